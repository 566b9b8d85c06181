/// Where an in-place write lands along its axis.
enum WritePosition: Sendable {
    /// Fixed when the graph is built: the usual case, a graph evaluated once.
    case fixed(Int)
    /// Whatever the counter holds when the kernel runs. A KVCache's step writes use its
    /// length this way, so that one graph, replayed, writes each step's rows after the last.
    case counter(Locked<Int>)

    var value: Int {
        switch self {
        case .fixed(let start): start
        case .counter(let c): c.withLock { $0 }
        }
    }

    var isCounter: Bool { if case .counter = self { true } else { false } }
}
