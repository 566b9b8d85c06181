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
    private var values: [(UnsafePointer<Float>, Int)]
    private var index: [Int]

    /// Each slot's room, in elements: at most `block`, less when no run asks for more. A
    /// decode step's kernels are a few hundred elements wide; full slots gave each of them a
    /// 4 KiB-per-slot allocation (40 KiB for a rotation) it mostly did not touch.
    let slotLength: Int

    init(program: Program, leaves: [LeafAccess], longest: Int = Evaluator.block) {
        self.program = program
        self.leaves = leaves
        slotLength = Swift.max(1, Swift.min(longest, Evaluator.block))
        scratch = .allocate(capacity: Swift.max(1, program.slotCount) * slotLength)
        values = Array(repeating: (UnsafePointer(scratch), 0), count: program.instructions.count)
        index = []
    }

    func deallocate() { scratch.deallocate() }

    private func slot(_ i: Int) -> UnsafeMutablePointer<Float> { scratch + program.slots[i] * slotLength }

    /// Evaluates `count` elements starting at `start` (a full index of the space), walking the
    /// last axis. Returns a pointer and a stride (0: one value for all, 1: `count` values).
    mutating func run(at start: [Int], count: Int) -> (UnsafePointer<Float>, Int) {
        precondition(count <= slotLength, "an evaluator run longer than its scratch")
        let axis = start.count - 1
        for (i, instruction) in program.instructions.enumerated() {
            switch instruction {
            case .load(let l):
                let leaf = leaves[l]
                if leaf.isStrided {
                    var position = leaf.offset
                    for a in 0..<start.count { position &+= start[a] &* leaf.strides[a] }
                    let inner = axis >= 0 ? leaf.strides[axis] : 0
                    if inner == 0 || count == 1 {
                        values[i] = (leaf.base + position, 0)
                    } else if inner == 1 {
                        values[i] = (leaf.base + position, 1)
                    } else {
                        wk_gather(leaf.base + position, inner, slot(i), count)
                        values[i] = (UnsafePointer(slot(i)), 1)
                    }
                } else {
                    let out = slot(i)
                    index = start
                    for e in 0..<count {
                        if axis >= 0 { index[axis] = start[axis] + e }
                        out[e] = leaf.base[leaf.elementOffset(of: index)]
                    }
                    values[i] = (UnsafePointer(out), count == 1 ? 0 : 1)
                }
            case .constant(let c):
                slot(i).pointee = c
                values[i] = (UnsafePointer(slot(i)), 0)
            case let .unary(op, a):
                let (p, s) = values[a]
                let n = s == 0 ? 1 : count
                wk_unary(op.code, p, slot(i), n)
                values[i] = (UnsafePointer(slot(i)), s)
            case let .binary(op, a, b):
                let (pa, sa) = values[a], (pb, sb) = values[b]
                let n = sa == 0 && sb == 0 ? 1 : count
                wk_binary(op.code, pa, sa, pb, sb, slot(i), n)
                values[i] = (UnsafePointer(slot(i)), n == 1 && count != 1 ? 0 : 1)
            case let .select(c, a, b):
                let (pc, sc) = values[c], (pa, sa) = values[a], (pb, sb) = values[b]
                let n = sc == 0 && sa == 0 && sb == 0 ? 1 : count
                wk_select(pc, sc, pa, sa, pb, sb, slot(i), n)
                values[i] = (UnsafePointer(slot(i)), n == 1 && count != 1 ? 0 : 1)
            }
        }
        return values[program.result]
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
