import CBLAS
import Dispatch
import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// The CPU wpack runs on, and which variant of each kernel family it uses there.
///
/// Features are detected once (cpuid, with the OS's consent through xgetbv). Each kernel family
/// has versions for some levels; a call runs the highest one at or below the level in use:
/// the detected level, capped by `WPACK_ISA=baseline|avx2|avx512` and, on one thread, by
/// `CPU.withLevel` (tests run every level the machine has through it).
public enum CPU {
    public enum Level: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
        case baseline, avx2, avx512

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }

        /// As WPACK_ISA spells it.
        public var description: String {
            switch self {
            case .baseline: "baseline"
            case .avx2: "avx2"
            case .avx512: "avx512"
            }
        }
    }

    /// The CPU's brand string ("AMD EPYC ...").
    public static var model: String {
        var buffer = [UInt8](repeating: 0, count: 64)
        buffer.withUnsafeMutableBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: 64) { wk_cpu_model($0, 64) }
        }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The features wpack looks for that this CPU has (and the OS enables), by their usual names.
    public static var features: [String] {
        let f = Int(wk_cpu_features())
        let names: [(bit: Int, name: String)] = [
            (Int(WK_CPU_AVX2), "avx2"), (Int(WK_CPU_FMA), "fma"), (Int(WK_CPU_F16C), "f16c"),
            (Int(WK_CPU_AVX512F), "avx512f"), (Int(WK_CPU_AVX512BW), "avx512bw"), (Int(WK_CPU_AVX512DQ), "avx512dq"),
            (Int(WK_CPU_AVX512VL), "avx512vl"), (Int(WK_CPU_AVX512VNNI), "avx512_vnni"), (Int(WK_CPU_AVXVNNI), "avx_vnni"),
            (Int(WK_CPU_AVX512BF16), "avx512_bf16"),
        ]
        return names.filter { f & $0.bit != 0 }.map(\.name)
    }

    /// The highest level this CPU supports.
    public static var detectedLevel: Level { Level(rawValue: Int(wk_detected_level())) ?? .baseline }

    /// WPACK_ISA's value when it names a level.
    public static var requestedLevel: Level? { Level(rawValue: Int(wk_isa_cap())) }

    /// The level the calling thread runs at.
    public static var level: Level { Level(rawValue: Int(wk_isa_level())) ?? .baseline }

    /// An unknown WPACK_ISA or WPACK_CONV: the library ignores it (it cannot print), so the
    /// tool refuses it with this message before doing any work.
    public static func environmentProblem() -> String? {
        if wk_isa_cap() == -2, let value = getenv("WPACK_ISA") {
            return "WPACK_ISA=\(String(cString: value)) is not a kernel level: use baseline, avx2 or avx512"
        }
        if wk_conv_env_state() == 2, let value = getenv("WPACK_CONV") {
            return "WPACK_CONV=\(String(cString: value)) is not a convolution choice: use auto or gemm"
        }
        return nil
    }

    /// Runs `body` with this thread's kernels (and the pool jobs it submits) capped at `level`.
    public static func withLevel<T>(_ level: Level, _ body: () throws -> T) rethrows -> T {
        let previous = wk_forced_level()
        wk_force_level(Int32(level.rawValue))
        defer { wk_force_level(previous) }
        return try body()
    }

    /// Runs `body` with this thread's convolutions on the implicit GEMM only (no Winograd, no
    /// direct kernel): tests of that path, and comparisons. `WPACK_CONV=gemm` does the same for
    /// the whole process.
    public static func withImplicitGEMMConvolutions<T>(_ body: () throws -> T) rethrows -> T {
        let previous = wk_conv_force_gemm(1)
        defer { wk_conv_force_gemm(previous) }
        return try body()
    }

    /// The levels this machine can run: every level up to the detected one.
    public static var availableLevels: [Level] { Level.allCases.filter { $0 <= detectedLevel } }

    /// A kernel family, the levels it has versions for, and the one in use on this thread.
    public struct KernelFamily: Sendable {
        public let name: String
        public let levels: [Level]
        public var inUse: Level { levels.last { $0 <= CPU.level } ?? .baseline }
    }

    /// wpack's own kernel families and their versions.
    public static let kernelFamilies: [KernelFamily] = [
        KernelFamily(name: "block primitives (elementwise, reductions, select)", levels: [.baseline, .avx2, .avx512]),
        KernelFamily(name: "rows (softmax, layer norm, RMS norm)", levels: [.baseline, .avx2, .avx512]),
        KernelFamily(name: "GEMM (packed panels; micro-kernels 4x8, 6x16, 8x48)", levels: [.baseline, .avx2, .avx512]),
        KernelFamily(name: "few-rows GEMM (up to 32 rows, weight read in place)", levels: [.baseline, .avx2, .avx512]),
        // Its transforms are AVX2 at the AVX-512 level too; its products run on the GEMM's micro-kernels.
        KernelFamily(name: "convolution (implicit GEMM; Winograd F(4x4,3x3), F(2x2,3x3) for 3x3, stride 1; direct for K <= 27)", levels: [.baseline, .avx2, .avx512]),
        // A few queries' scores go through the few-rows GEMM, which has an AVX-512 version.
        KernelFamily(name: "attention (six-row tiles up to 1,024 keys; 4 queries or fewer: dot products over any keys)", levels: [.baseline, .avx2]),
        KernelFamily(name: "text scanning (ASCII runs)", levels: [.baseline, .avx2]),
    ]

    /// The multiply-add peak in GFLOP/s, measured with a tight loop of independent vector FMAs
    /// at this thread's level, on `workers` of the engine's workers at once (best of `trials`
    /// runs of about `seconds` each).
    public static func fmaPeak(workers: Int = 1, seconds: Double = 0.1, trials: Int = 5) -> Double {
        let n = Swift.max(1, Swift.min(workers, Parallel.workers))
        // Calibrate the iterations for one run on one core.
        var iterations = 1 << 16
        while true {
            let start = DispatchTime.now().uptimeNanoseconds
            var sink: Float = 0
            _ = wk_fma_peak_run(iterations, &sink)
            if Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 > seconds / 4 || iterations > 1 << 30 { break }
            iterations *= 2
        }
        iterations *= 4
        var best = 0.0
        for _ in 0..<trials {
            let start = DispatchTime.now().uptimeNanoseconds
            let flops = Locked(0)
            let count = iterations
            Parallel.run(n) { _ in
                // The pool's helpers run at the submitting thread's level (it travels with the job).
                var sink: Float = 0
                let done = wk_fma_peak_run(count, &sink)
                flops.withLock { $0 += done }
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = Swift.max(best, Double(flops.withLock { $0 }) / elapsed / 1e9)
        }
        return best
    }

    /// The engine's workers: one per core, or WPACK_THREADS.
    public static var workers: Int { Parallel.workers }

    /// The system BLAS, used for matrix-vector products only: its build and the core it chose
    /// (which OPENBLAS_CORETYPE overrides). No other product depends on it.
    public static var blas: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        let override = getenv("OPENBLAS_CORETYPE").map { ", OPENBLAS_CORETYPE=" + String(cString: $0) } ?? ""
        return "\(config.trimmingSpaces), core \(core)\(override)"
    }
}

private extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
