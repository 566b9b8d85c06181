import CKernels

/// Runs a program over one block of up to `Evaluator.block` consecutive elements along the
/// innermost axis of its space. Inputs with unit stride are read in place, broadcast inputs
/// stay one scalar (so a broadcast chain is computed once per block), other strides are
/// gathered into scratch.
struct Evaluator {
    static let block = 1024

    let program: Program
    let leaves: [LeafAccess]
    let scratch: UnsafeMutablePointer<Float>
    /// Each instruction's value: where it is and its stride. Raw memory rather than an array
    /// of tuples, whose generic metadata the runtime looked up for every evaluator (a decode
    /// step makes hundreds).
    private let values: UnsafeMutablePointer<Value>
    private var index: [Int]

    struct Value {
        var pointer: UnsafePointer<Float>
        var stride: Int
    }

    /// Each slot's room, in elements: at most `block`, less when no run asks for more. A
    /// decode step's kernels are a few hundred elements wide; full slots gave each of them a
    /// 4 KiB-per-slot allocation (40 KiB for a rotation) it mostly did not touch.
    let slotLength: Int

    init(program: Program, leaves: [LeafAccess], longest: Int = Evaluator.block) {
        self.program = program
        self.leaves = leaves
        slotLength = Swift.max(1, Swift.min(longest, Evaluator.block))
        scratch = .allocate(capacity: Swift.max(1, program.slotCount) * slotLength)
        values = .allocate(capacity: Swift.max(1, program.instructions.count))
        values.initialize(repeating: Value(pointer: UnsafePointer(scratch), stride: 0), count: Swift.max(1, program.instructions.count))
        index = []
    }

    func deallocate() {
        scratch.deallocate()
        values.deallocate()
    }

    private func slot(_ i: Int) -> UnsafeMutablePointer<Float> { scratch + program.slots[i] * slotLength }

    /// Evaluates `count` elements starting at `start` (a full index of the space), walking the
    /// last axis, and with `rows` above 1, that many consecutive indices of the axis before it
    /// too (a tile of rows × count, laid out row after row): a space whose last axis is short
    /// (a rotation's 32 features of each of 9 heads) then costs one pass over the program, not
    /// one per row. Returns a pointer and a stride (0: one value for all, 1: rows · count values).
    mutating func run(at start: [Int], rows: Int = 1, count: Int) -> (UnsafePointer<Float>, Int) {
        let n = rows * count
        precondition(n <= slotLength && (rows == 1 || start.count >= 2), "an evaluator run longer than its scratch")
        let axis = start.count - 1
        for (i, instruction) in program.instructions.enumerated() {
            switch instruction {
            case .load(let l):
                let leaf = leaves[l]
                if leaf.isStrided {
                    var position = leaf.offset
                    for a in 0..<start.count { position &+= start[a] &* leaf.strides[a] }
                    let inner = axis >= 0 && count > 1 ? leaf.strides[axis] : 0
                    let outer = rows > 1 ? leaf.strides[axis - 1] : 0
                    if inner == 0 && outer == 0 {
                        values[i] = Value(pointer: leaf.base + position, stride: 0)
                    } else if (inner == 1 || count == 1) && (rows == 1 || outer == count) {
                        values[i] = Value(pointer: leaf.base + position, stride: 1)
                    } else if rows == 1 {
                        wk_gather(leaf.base + position, inner, slot(i), count)
                        values[i] = Value(pointer: UnsafePointer(slot(i)), stride: 1)
                    } else {
                        for r in 0..<rows { wk_gather(leaf.base + position + r * outer, inner, slot(i) + r * count, count) }
                        values[i] = Value(pointer: UnsafePointer(slot(i)), stride: 1)
                    }
                } else {
                    let out = slot(i)
                    index = start
                    for r in 0..<rows {
                        if rows > 1 { index[axis - 1] = start[axis - 1] + r }
                        for e in 0..<count {
                            if axis >= 0 { index[axis] = start[axis] + e }
                            out[r * count + e] = leaf.base[leaf.elementOffset(of: index)]
                        }
                    }
                    values[i] = Value(pointer: UnsafePointer(out), stride: n == 1 ? 0 : 1)
                }
            case .constant(let c):
                slot(i).pointee = c
                values[i] = Value(pointer: UnsafePointer(slot(i)), stride: 0)
            case let .unary(op, a):
                let (p, s) = (values[a].pointer, values[a].stride)
                let m = s == 0 ? 1 : n
                wk_unary(op.code, p, slot(i), m)
                values[i] = Value(pointer: UnsafePointer(slot(i)), stride: s)
            case let .binary(op, a, b):
                let (pa, sa) = (values[a].pointer, values[a].stride), (pb, sb) = (values[b].pointer, values[b].stride)
                let m = sa == 0 && sb == 0 ? 1 : n
                wk_binary(op.code, pa, sa, pb, sb, slot(i), m)
                values[i] = Value(pointer: UnsafePointer(slot(i)), stride: m == 1 && n != 1 ? 0 : 1)
            case let .select(c, a, b):
                let (pc, sc) = (values[c].pointer, values[c].stride), (pa, sa) = (values[a].pointer, values[a].stride), (pb, sb) = (values[b].pointer, values[b].stride)
                let m = sc == 0 && sa == 0 && sb == 0 ? 1 : n
                wk_select(pc, sc, pa, sa, pb, sb, slot(i), m)
                values[i] = Value(pointer: UnsafePointer(slot(i)), stride: m == 1 && n != 1 ? 0 : 1)
            }
        }
        return (values[program.result].pointer, values[program.result].stride)
    }
}

/// Merges adjacent axes that every stride list walks as one (and drops size-1 axes), so the
/// innermost loop is as long as the layouts allow.
func coalesce(shape: [Int], strides: [[Int]]) -> ([Int], [[Int]]) {
    let keep = shape.indices.filter { shape[$0] != 1 }
    var s = keep.map { shape[$0] }
    var st = strides.map { list in keep.map { list[$0] } }
    var i = s.count - 2
    while i >= 0 {
        if st.allSatisfy({ $0[i] == $0[i + 1] * s[i + 1] }) {
            s[i] *= s[i + 1]
            s.remove(at: i + 1)
            for k in st.indices { st[k][i] = st[k][i + 1]; st[k].remove(at: i + 1) }
        }
        i -= 1
    }
    return (s, st)
}

/// The multi-index of flat position `flat` in `shape` (row-major), written into `index[at...]`.
@inline(__always)
func unravel(_ flat: Int, _ shape: ArraySlice<Int>, into index: inout [Int], at: Int) {
    var rest = flat
    var k = at + shape.count - 1
    for extent in shape.reversed() {
        index[k] = extent > 0 ? rest % extent : 0
        rest = extent > 0 ? rest / extent : 0
        k -= 1
    }
}
