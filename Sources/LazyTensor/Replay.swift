/// A graph planned once and then run again and again, each run reading what its input buffers
/// hold at that moment: no graph is built and no plan is looked up between runs.
///
/// A decode loop builds the same graph at every step, differing only in values that the
/// kernels read when they run (the token id, the position, the cache's length). Building it
/// and finding its cached plan costs more than some of its kernels; a replay keeps the graph
/// and its kernels and runs them again.
///
///     let id = Tensor(shape: [1, 1], integers: [0])
///     let logits = model(id, cache: cache, placement: .whenRun)   // appends run at the cache's length
///     let step = Replay([logits])
///     for token in tokens {
///         id.assign(integers: [token])
///         let out = step.run()[0]
///         cache.advance(by: 1)
///     }
///
/// What the graph reads from buffers is read afresh each run: change it with `assign`. What
/// was already evaluated when the replay was made (a node with a result) is a buffer too, kept
/// as it was. Everything else, shapes and fixed positions included, is as it was built. Each
/// run allocates its outputs anew. Used from one task at a time.
public final class Replay {
    private let roots: [Node]
    private let kernels: [Kernel]
    /// Writes whose position is a counter, checked against their targets before each run.
    private let movingWrites: [Kernel]
    /// How many kernels read each node: the same every run.
    private let consumers: [ObjectIdentifier: Int]

    /// Plans `outputs` (or takes the cached plan of a graph of the same structure). Nothing runs.
    public init(_ outputs: [Tensor]) {
        let roots = outputs.map(\.node)
        self.roots = roots
        kernels = Profile.time("plan") { PlanCache.kernels(for: roots) }
        consumers = Planner.consumerCounts(kernels)
        movingWrites = kernels.filter { k in
            if case let .write(_, _, _, _, position) = k.node.op { position.isCounter } else { false }
        }
    }

    /// What each run executes, as `explain()` shows it.
    public var plan: ExecutionPlan { ExecutionPlan(kernels: kernels) }

    /// Runs the kernels and returns each output as a new contiguous buffer. A write whose
    /// counter has moved past its target's end is a TensorError, and nothing runs (the outputs
    /// are stand-ins).
    public func run() -> [Tensor] {
        for k in movingWrites {
            guard case let .write(_, _, _, axis, position) = k.node.op else { continue }
            let start = position.value, rows = k.programs[0].space[axis], capacity = k.node.shape[axis]
            guard start + rows <= capacity else {
                let error = TensorError(op: "Replay.run", shapes: [k.node.shape],
                                        reason: "a write of \(rows) rows at \(start) runs past the \(capacity) its target holds")
                return roots.map { Tensor.report(error, shape: $0.shape) }
            }
        }
        let buffers = Executor.run(kernels, roots: roots, replaying: true, consumers: consumers)
        return buffers.map { Tensor(node: $0) }
    }
}
