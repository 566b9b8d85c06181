
/// Why bytes were copied. Every copy the library makes names one of these, so a test can
/// prove which copies happened and a user can see where memory traffic comes from.
public enum CopyReason: String, Sendable, CaseIterable, Codable {
    /// The caller asked for a copy (an explicit `contiguous()` or `Tensor(shape:scalars:)`).
    case userRequest
    /// A reshape that strides could not express had to be materialised.
    case reshape
    /// Compressed or non-float32 stored data decoded into a fresh buffer.
    case decode
    /// An operand repacked so that a BLAS routine can consume it.
    case pack
    /// Writing an evaluated result into its output buffer.
    case output
    /// The patch matrix of an im2col convolution.
    case im2col
    /// A convolution of many small images done as one GEMM over all their patches: its
    /// [channels, images·positions] product reordered into NCHW.
    case reorder
    /// Rows picked from a table by index (an embedding lookup).
    case gather
    /// Values written in place into existing storage (new rows of a cache, `assign`): only
    /// the elements written, never the rest of the target.
    case cacheWrite
    /// Elements converted to another dtype: indices widened to float32 for arithmetic, or
    /// values made indices.
    case convert
}

/// Counters for the work done inside one `Stats.measure` closure.
///
/// Counting is scoped through a task-local collector rather than a global, so tests that run in
/// parallel each see only their own work. Nested scopes see their inner work too.
public struct Stats: Sendable, Equatable, CustomStringConvertible {
    public var kernels = 0
    public var bytesAllocated = 0
    public var bytesCopied = 0
    public var copiedByReason: [CopyReason: Int] = [:]
    /// Highest number of bytes allocated inside the scope and alive at the same time.
    public var peakBytes = 0
    /// Graphs that had to be planned (not found in the plan cache).
    public var plans = 0
    /// Kernels that computed again an intermediate an earlier evaluation had computed and
    /// released (its result is kept from then on). Nonzero means a graph keeps reading results
    /// it never asked for: materialize them together, or write them into a KVCache.
    public var recomputed = 0

    public init() {}

    public var description: String {
        let reasons = copiedByReason.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: ", ")
        return "kernels: \(kernels), allocated: \(bytesAllocated) B, copied: \(bytesCopied) B"
            + (reasons.isEmpty ? "" : " (\(reasons))") + ", peak: \(peakBytes) B, plans: \(plans)"
            + (recomputed == 0 ? "" : ", recomputed: \(recomputed)")
    }

    @TaskLocal static var collector: Collector?

    /// Runs `body` and returns its result with the counters of the work it did.
    public static func measure<T>(_ body: () throws -> T) rethrows -> (T, Stats) {
        let c = Collector(parent: collector)
        let value = try $collector.withValue(c) { try body() }
        return (value, c.snapshot())
    }

    /// The async form, for work that awaits.
    public static func measure<T>(
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
    ) async rethrows -> (T, Stats) {
        let c = Collector(parent: collector)
        let value = try await $collector.withValue(c) { try await body() }
        return (value, c.snapshot())
    }

    // MARK: recording (library-internal, but public for the sibling modules)

    static func recordPlan() {
        var c = collector
        while let current = c { current.state.withLock { $0.stats.plans += 1 }; c = current.parent }
    }

    static func recordRecompute() {
        var c = collector
        while let current = c { current.state.withLock { $0.stats.recomputed += 1 }; c = current.parent }
    }

    public static func recordKernel(_ count: Int = 1) {
        var c = collector
        while let current = c { current.state.withLock { $0.stats.kernels += count }; c = current.parent }
    }

    public static func recordCopy(bytes: Int, reason: CopyReason) {
        var c = collector
        while let current = c {
            current.state.withLock {
                $0.stats.bytesCopied += bytes
                $0.stats.copiedByReason[reason, default: 0] += bytes
            }
            c = current.parent
        }
    }

    /// Records an allocation and returns the scope it was charged to, so the matching release
    /// can be charged to the same scope even if it happens on another thread or later.
    static func recordAllocation(bytes: Int) -> Collector? {
        var c = collector
        while let current = c {
            current.state.withLock {
                $0.stats.bytesAllocated += bytes
                $0.live += bytes
                $0.stats.peakBytes = max($0.stats.peakBytes, $0.live)
            }
            c = current.parent
        }
        return collector
    }

    static func recordRelease(bytes: Int, scope: Collector?) {
        var c = scope
        while let current = c { current.state.withLock { $0.live -= bytes }; c = current.parent }
    }

    final class Collector: Sendable {
        struct State {
            var stats = Stats()
            /// Bytes allocated in this scope and not yet released (for the peak).
            var live = 0
        }
        let parent: Collector?
        let state = Locked(State())
        init(parent: Collector?) { self.parent = parent }
        func snapshot() -> Stats { state.withLock { $0.stats } }
    }
}
