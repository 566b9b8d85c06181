import CKernels
import Foundation
import Testing
@testable import LazyTensor

/// Kernel levels: what is detected, how it is capped, and that every level this machine has
/// gives the same answers. Levels the machine lacks are reported as skipped, by name.
@Suite(.serialized) struct CPUTests {
    @Test func theDetectedLevelFollowsTheFeatures() {
        let f = Set(CPU.features)
        let avx512 = ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(f.contains)
        let avx2 = f.contains("avx2") && f.contains("fma")
        #expect(CPU.detectedLevel == (avx512 && avx2 ? .avx512 : avx2 ? .avx2 : .baseline))
        #expect(CPU.availableLevels == CPU.Level.allCases.filter { $0 <= CPU.detectedLevel })
        #expect(CPU.level <= CPU.detectedLevel)
        print("CPU: \(CPU.model); features: \(CPU.features.joined(separator: " ")); levels run here: "
              + CPU.availableLevels.map(\.description).joined(separator: ", ")
              + "; skipped (not on this machine): " + CPU.Level.allCases.filter { $0 > CPU.detectedLevel }.map(\.description).joined(separator: ", "))
    }

    @Test func levelNamesParseAsWPACK_ISASpellsThem() {
        #expect(wk_parse_isa("baseline") == 0 && wk_parse_isa("avx2") == 1 && wk_parse_isa("avx512") == 2)
        #expect(wk_parse_isa("AVX2") == -2 && wk_parse_isa("sse4") == -2 && wk_parse_isa(nil) == -1)
    }

    @Test func withLevelCapsThisThreadOnly() {
        let top = CPU.level
        final class Seen: @unchecked Sendable { var level: CPU.Level? }
        let seen = Seen()
        CPU.withLevel(.baseline) {
            #expect(CPU.level == .baseline)
            #expect(CPU.kernelFamilies.allSatisfy { $0.inUse == .baseline })
            // Another thread, started while this one is capped, runs at the machine's level.
            let done = DispatchSemaphore(value: 0)
            let thread = Thread { seen.level = CPU.level; done.signal() }
            thread.start()
            done.wait()
        }
        #expect(seen.level == top)
        #expect(CPU.level == top)
    }

    /// One graph of every block primitive and row kernel, at every level the machine has:
    /// the levels agree within the stated tolerances, and the pool's helpers run the
    /// submitting thread's level (the graph is large enough to be split).
    @Test func everyAvailableLevelAgrees() {
        let x = Tensor.randn(shape: [256, 384], seed: 3)
        func graph() -> [Float] {
            ((x * 1.5 + 0.25).gelu().softmax(axis: -1).layerNorm() + x.sin() * x.exp().tanh()).sum(axes: [1]).materialized().scalars
        }
        let reference = CPU.withLevel(.baseline) { graph() }
        for level in CPU.availableLevels {
            let got = CPU.withLevel(level) { graph() }
            let worst = zip(got, reference).map { Swift.abs($0 - $1) / Swift.max(1, Swift.abs($1)) }.max() ?? 0
            #expect(worst < 1e-4, "\(level): \(worst)")
        }
    }

    @Test(.enabled(if: CPU.detectedLevel >= .avx512, "this machine has no AVX-512 (F, BW, DQ, VL)"))
    func avx512IsUsedWhereTheCPUHasIt() {
        #expect(CPU.level == .avx512 || CPU.requestedLevel.map { $0 < .avx512 } == true)
        let families = CPU.kernelFamilies.filter { $0.levels.contains(.avx512) }.map(\.name)
        #expect(families.count >= 4, "\(families)")
        if CPU.level == .avx512 {
            #expect(CPU.kernelFamilies.allSatisfy { $0.inUse == ($0.levels.contains(.avx512) ? .avx512 : .avx2) })
        }
    }

    /// Every unary op with a vector version, the binary ops, select, RMS norm and log-softmax, on
    /// rows whose length is not a multiple of any vector width (the scalar tails run too): each
    /// level within 4 ulp-ish of the baseline (libm) values.
    @Test func everyElementwiseOpAgreesAtEveryLevel() {
        let x = Tensor.randn(shape: [37, 203], seed: 11) * 2
        let positive = x.abs() + 0.1
        func graphs() -> [[Float]] {
            [x.sigmoid(), x.silu(), x.erf(), positive.log(), x.cos(), x.sin(), x.exp(), x.tanh(), x.gelu(approximate: .tanh),
             x.gelu(), x.logSoftmax(axis: -1), x.rmsNorm(), Tensor.select(x.greater(positive - 0.5), x, positive), max(x, positive * 0.5),
             x.sum(axes: [1])].map { $0.materialized().scalars }
        }
        let reference = CPU.withLevel(.baseline) { graphs() }
        for level in CPU.availableLevels {
            let got = CPU.withLevel(level) { graphs() }
            for (index, (g, r)) in zip(got, reference).enumerated() {
                let worst = zip(g, r).map { Swift.abs($0 - $1) / Swift.max(1, Swift.abs($1)) }.max() ?? 0
                #expect(worst < 2e-5, "\(level), graph \(index): \(worst)")
            }
        }
    }
}
