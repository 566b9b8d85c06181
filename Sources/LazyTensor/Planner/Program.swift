/// The elementwise part of a kernel: a small register program evaluated a block of elements
/// at a time (like numexpr), so a fused chain runs in L1 with one pass over memory.
struct Program: Sendable {
    enum Instruction: Sendable {
        case load(leaf: Int)
        case constant(Float)
        case unary(UnaryOp, Int)
        case binary(BinaryOp, Int, Int)
        case select(Int, Int, Int)
    }

    /// An input the program reads: a node that is (or will be, earlier in the plan) a buffer,
    /// and the steps from the kernel space to that node's index space.
    struct Leaf: Sendable {
        let node: Node
        let steps: [MapStep]
    }

    /// Shape of the space the program is evaluated over.
    var space: [Int]
    var instructions: [Instruction] = []
    var leaves: [Leaf] = []
    /// Scratch slot of each instruction's value (values that die free their slot).
    var slots: [Int] = []
    var slotCount = 0

    var result: Int { instructions.count - 1 }

    /// A program that only reads one input: evaluating it is a copy.
    var isPureLoad: Bool { instructions.count == 1 && { if case .load = instructions[0] { true } else { false } }() }

    mutating func assignSlots() {
        var lastUse = Array(instructions.indices)
        for (i, ins) in instructions.enumerated() {
            switch ins {
            case .unary(_, let a): lastUse[a] = i
            case .binary(_, let a, let b): lastUse[a] = i; lastUse[b] = i
            case .select(let c, let a, let b): lastUse[c] = i; lastUse[a] = i; lastUse[b] = i
            default: break
            }
        }
        var free: [Int] = []
        slots = []
        slotCount = 0
        var dying: [[Int]] = Array(repeating: [], count: instructions.count)
        for (v, last) in lastUse.enumerated() where last > v { dying[last].append(v) }
        for i in instructions.indices {
            let slot = free.popLast() ?? { slotCount += 1; return slotCount - 1 }()
            slots.append(slot)
            // Inputs dying here are released after this instruction's slot is taken, so an
            // instruction never writes over the block it is reading.
            for v in dying[i] { free.append(slots[v]) }
        }
    }

    /// The program computing instruction `root` alone: the instructions it depends on, in
    /// their order, and only the leaves they read.
    func extracting(_ root: Int) -> Program {
        var needed = Set<Int>()
        var stack = [root]
        while let i = stack.popLast() {
            guard needed.insert(i).inserted else { continue }
            switch instructions[i] {
            case .unary(_, let a): stack.append(a)
            case .binary(_, let a, let b): stack += [a, b]
            case .select(let c, let a, let b): stack += [c, a, b]
            default: break
            }
        }
        var out = Program(space: space)
        var renumber: [Int: Int] = [:], leafRenumber: [Int: Int] = [:]
        for i in needed.sorted() {
            var ins = instructions[i]
            switch ins {
            case .load(let l):
                if leafRenumber[l] == nil { leafRenumber[l] = out.leaves.count; out.leaves.append(leaves[l]) }
                ins = .load(leaf: leafRenumber[l]!)
            case .constant: break
            case let .unary(op, a): ins = .unary(op, renumber[a]!)
            case let .binary(op, a, b): ins = .binary(op, renumber[a]!, renumber[b]!)
            case let .select(c, a, b): ins = .select(renumber[c]!, renumber[a]!, renumber[b]!)
            }
            renumber[i] = out.instructions.count
            out.instructions.append(ins)
        }
        out.assignSlots()
        return out
    }

    /// The instructions that read value `v`.
    func users(of v: Int) -> [Int] {
        instructions.indices.filter { i in
            switch instructions[i] {
            case .unary(_, let a): a == v
            case .binary(_, let a, let b): a == v || b == v
            case .select(let c, let a, let b): c == v || a == v || b == v
            default: false
            }
        }
    }

    /// A readable form for explain(): the expression tree of the result.
    func expression(_ v: Int? = nil, names: (Int) -> String) -> String {
        let v = v ?? result
        switch instructions[v] {
        case .load(let leaf): return names(leaf)
        case .constant(let c): return c == c.rounded() && Swift.abs(c) < 1e6 ? String(Int(c)) : "\(c)"
        case let .unary(op, a): return "\(op.name)(\(expression(a, names: names)))"
        case let .binary(op, a, b): return "\(op.name)(\(expression(a, names: names)), \(expression(b, names: names)))"
        case let .select(c, a, b): return "where(\(expression(c, names: names)), \(expression(a, names: names)), \(expression(b, names: names)))"
        }
    }
}
