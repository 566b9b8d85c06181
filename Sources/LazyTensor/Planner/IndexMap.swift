/// How a kernel reaches one of its inputs: the chain of index maps from the kernel's iteration
/// space down to the input's own index space. Permutes, broadcasts and slices are affine maps
/// and compose into one; a reshape is kept as a step of its own and folded into strides at the
/// leaf when the leaf's layout allows (NumPy's no-copy reshape rule), otherwise evaluated per
/// element. This is how views cost nothing: they become strides in a consumer's loop.
enum MapStep: Sendable, Hashable, CustomStringConvertible {
    case affine(Affine)
    /// Row-major reinterpretation: domain shape `from`, codomain shape `to`.
    case reshape(from: [Int], to: [Int])

    var description: String {
        switch self {
        case .affine(let a): "affine(\(a.offset);\(a.coef);\(a.domainRank))"
        case .reshape(let f, let t): "reshape\(f)->\(t)"
        }
    }
}

/// y = offset + coef · x, with x in a space of rank `domainRank` and y of rank offset.count.
struct Affine: Sendable, Hashable {
    var offset: [Int]
    var coef: [Int]  // row-major [codomainRank][domainRank]
    var domainRank: Int
    var codomainRank: Int { offset.count }

    static func identity(_ rank: Int) -> Affine {
        var coef = [Int](repeating: 0, count: rank * rank)
        for i in 0..<rank { coef[i * rank + i] = 1 }
        return Affine(offset: [Int](repeating: 0, count: rank), coef: coef, domainRank: rank)
    }

    /// self ∘ inner: first `inner`, then self.
    func after(_ inner: Affine) -> Affine {
        let c = codomainRank, m = domainRank, d = inner.domainRank
        precondition(m == inner.codomainRank)
        var offset = self.offset
        var coef = [Int](repeating: 0, count: c * d)
        for j in 0..<c {
            for k in 0..<m {
                let a = self.coef[j * m + k]
                if a == 0 { continue }
                offset[j] += a * inner.offset[k]
                for i in 0..<d { coef[j * d + i] += a * inner.coef[k * d + i] }
            }
        }
        return Affine(offset: offset, coef: coef, domainRank: d)
    }

    func apply(_ x: [Int]) -> [Int] {
        (0..<codomainRank).map { j in
            var y = offset[j]
            for i in 0..<domainRank { y += coef[j * domainRank + i] * x[i] }
            return y
        }
    }

    /// The map a view step makes from a view node's index space to its input's.
    static func forView(_ step: ViewStep, outShape: [Int], inShape: [Int]) -> Affine? {
        let R = outShape.count, r = inShape.count
        var map = Affine(offset: [Int](repeating: 0, count: r), coef: [Int](repeating: 0, count: r * R), domainRank: R)
        switch step {
        case .permute(let order):
            for i in 0..<R { map.coef[order[i] * R + i] = 1 }
        case .expand:
            let lead = R - r
            for j in 0..<r where inShape[j] == outShape[j + lead] { map.coef[j * R + j + lead] = 1 }
        case let .slice(axis, start, step):
            for i in 0..<R { map.coef[i * R + i] = 1 }
            map.coef[axis * R + axis] = step
            map.offset[axis] = start
        case .reshape:
            return nil
        }
        return map
    }
}

/// Where one leaf's elements are, seen from the kernel's iteration space.
struct LeafAccess {
    let base: UnsafePointer<Float>
    var offset: Int
    /// Strides over the kernel space when `residual` is empty; otherwise strides over the
    /// space the residual steps lead to.
    var strides: [Int]
    /// Steps that could not be folded into strides (a reshape of a layout that has no strided
    /// form). Evaluated per element.
    var residual: [MapStep]

    var isStrided: Bool { residual.isEmpty }

    /// Folds `steps` (kernel space → leaf space) into the leaf's own (offset, strides).
    init(base: UnsafePointer<Float>, offset: Int, strides: [Int], steps: [MapStep]) {
        self.base = base
        var offset = offset, strides = strides
        var remaining = steps
        while let step = remaining.last {
            switch step {
            case .affine(let a):
                var s = [Int](repeating: 0, count: a.domainRank)
                for j in 0..<a.codomainRank {
                    offset += strides[j] * a.offset[j]
                    for i in 0..<a.domainRank { s[i] += strides[j] * a.coef[j * a.domainRank + i] }
                }
                strides = s
            case let .reshape(from, to):
                guard let s = Layout.reshapedStrides(shape: to, strides: strides, to: from) else {
                    self.offset = offset; self.strides = strides; residual = remaining
                    return
                }
                strides = s
            }
            remaining.removeLast()
        }
        self.offset = offset
        self.strides = strides
        residual = []
    }

    /// Element offset of a kernel-space index, through the residual steps.
    func elementOffset(of index: [Int]) -> Int {
        var x = index
        for step in residual {
            switch step {
            case .affine(let a): x = a.apply(x)
            case let .reshape(from, to):
                var flat = 0
                for (i, v) in x.enumerated() { flat = flat * from[i] + v }
                var y = [Int](repeating: 0, count: to.count)
                for axis in to.indices.reversed() where to[axis] > 0 {
                    y[axis] = flat % to[axis]
                    flat /= to[axis]
                }
                x = y
            }
        }
        var position = offset
        for (i, v) in x.enumerated() { position += strides[i] * v }
        return position
    }
}
