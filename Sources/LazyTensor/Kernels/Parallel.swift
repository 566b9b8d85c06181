import CKernels

/// Wraps values that are safe to share across the worker threads of one kernel (raw pointers
/// into buffers each worker writes disjoint parts of) but that Swift cannot prove so.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

enum Parallel {
    /// Work below this many elements runs on the calling thread: waking a second core costs
    /// more than it saves.
    static let threshold = 1 << 16
    /// One worker per core (this project's machines have 2); WPACK_THREADS overrides it.
    static let workers: Int = {
        if let text = getenv("WPACK_THREADS"), let n = Int(String(cString: text)), n >= 1 { return n }
        return Swift.max(1, ProcessInfoCores.count)
    }()

    /// Splits 0..<items into one contiguous range per worker.
    static func forEach(items: Int, work: Int, _ body: @Sendable (Range<Int>) -> Void) {
        guard items > 0 else { return }
        let n = work >= threshold ? Swift.min(workers, items) : 1
        if n == 1 { body(0..<items); return }
        run(n) { w in
            let start = items * w / n, end = items * (w + 1) / n
            if start < end { body(start..<end) }
        }
    }

    /// Runs body(0..<count) at once, index 0 on this thread and the others on the engine's
    /// workers (pool.c: they spin briefly between jobs, which GCD's threads do not).
    static func run(_ count: Int, _ body: @Sendable (Int) -> Void) {
        _ = started
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { pointer in
                wk_pool_run(count, { context, index in
                    context!.assumingMemoryBound(to: (@Sendable (Int) -> Void).self).pointee(Int(index))
                }, pointer)
            }
        }
    }

    /// Starts the pool's helpers (once), for C drivers that submit their own jobs (wk_sgemm).
    static func start() { _ = started }

    private static let started: Void = wk_pool_start(Int32(workers))
}

enum ProcessInfoCores {
    static let count: Int = {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return 2
        #endif
    }()
}

#if canImport(Glibc)
import Glibc
#endif
