
/// NumPy's einsum, lowered to views, reductions and (batched) GEMMs.
///
/// A two-operand contraction classifies every index as batch (in both, kept), contracted (in
/// both, summed), kept-left or kept-right, permutes each operand to (batch, kept, contracted)
/// order and merges each group into one axis: all views, so when the groups' strides merge the
/// GEMM reads the operands in place (otherwise the matmul packs them, counted). Indices that
/// appear in one operand only and not in the output are summed first; a repeated index within an
/// operand is a diagonal view. Three or more operands are contracted pairwise, in the cheapest
/// order for up to four operands and greedily beyond; the parsed equation and the chosen order
/// are cached by equation and shapes.
public func einsum(_ equation: String, _ operands: Tensor...) -> Tensor { einsum(equation, operands) }

public func einsum(_ equation: String, _ operands: [Tensor]) -> Tensor {
    Tensor.checked(operands.first?.shape ?? []) { () throws(TensorError) in try checkedEinsum(equation, operands) }
}

private func checkedEinsum(_ equation: String, _ operands: [Tensor]) throws(TensorError) -> Tensor {
    let shapes = operands.map(\.shape)
    let plan = try Einsum.plan(equation, shapes: shapes)
    // Operands as (tensor, labels), after diagonals, broadcasts and one-operand sums.
    var terms: [(Tensor, [Int])] = []
    for (i, t) in operands.enumerated() {
        var tensor = t, labels = plan.inputs[i]
        tensor = try Einsum.takeDiagonals(tensor, &labels, equation: equation, shapes: shapes)
        let target = labels.map { plan.sizes[$0]! }
        if tensor.shape != target { tensor = tensor.expanded(to: target) }
        terms.append((tensor, labels))
    }
    for step in plan.path {
        let (a, la) = terms[step.0], (b, lb) = terms[step.1]
        let later = Set(plan.output).union(terms.indices.filter { $0 != step.0 && $0 != step.1 }.flatMap { terms[$0].1 })
        let (c, lc) = Einsum.contract(a, la, b, lb, keep: later, sizes: plan.sizes)
        terms.remove(at: Swift.max(step.0, step.1))
        terms.remove(at: Swift.min(step.0, step.1))
        terms.append((c, lc))
    }
    var (result, labels) = terms[0]
    // Labels of the last term that the output does not want are summed out.
    let extra = labels.indices.filter { !plan.output.contains(labels[$0]) }
    if !extra.isEmpty {
        result = result.sum(axes: extra)
        labels = labels.indices.filter { !extra.contains($0) }.map { labels[$0] }
    }
    let order = plan.output.map { labels.firstIndex(of: $0)! }
    return order == Array(labels.indices) ? result : result.permuted(order)
}

enum Einsum {
    struct Plan: Sendable {
        /// Labels per operand: letters are their ASCII codes, ellipsis axes -1, -2, ... from the right.
        var inputs: [[Int]]
        var output: [Int]
        var sizes: [Int: Int]
        /// Pairs of term indices to contract, in order; each result is appended to the list.
        var path: [(Int, Int)]
    }

    private static let cache = Locked<[String: Plan]>([:])

    private static func key(_ equation: String, _ shapes: [[Int]]) -> String {
        equation + "|" + shapes.map { $0.map(String.init).joined(separator: ",") }.joined(separator: ";")
    }

    /// Whether a plan for this equation and these shapes is cached (for tests).
    static func isCached(_ equation: String, shapes: [[Int]]) -> Bool { cache.withLock { $0[key(equation, shapes)] != nil } }

    static func plan(_ equation: String, shapes: [[Int]]) throws(TensorError) -> Plan {
        let key = key(equation, shapes)
        if let cached = cache.withLock({ $0[key] }) { return cached }
        let plan = try parse(equation, shapes: shapes)
        cache.withLock { $0[key] = plan }
        return plan
    }

    static func parse(_ equation: String, shapes: [[Int]]) throws(TensorError) -> Plan {
        let eq = equation.filter { !$0.isWhitespace }
        let sides = eq.split(separator: "->", omittingEmptySubsequences: false).map(String.init)
        try require(sides.count <= 2, "einsum '\(equation)'", shapes, "more than one '->'")
        let terms = sides[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        try require(terms.count == shapes.count, "einsum '\(equation)'", shapes, "names \(terms.count) operands, \(shapes.count) given")
        var inputs: [[Int]] = []
        var sizes: [Int: Int] = [:]
        var ellipsisRank = 0
        for (term, shape) in zip(terms, shapes) {
            let (letters, hasEllipsis, ellipsisAt) = try scan(term, equation: equation, shapes: shapes)
            let k = shape.count - letters.count
            try require(k >= 0 && (hasEllipsis || k == 0), "einsum '\(equation)'", shapes, "'\(term)' does not match an operand of shape \(shape)")
            var labels = letters
            if hasEllipsis { labels.insert(contentsOf: (0..<k).map { -(k - $0) }, at: ellipsisAt) }
            ellipsisRank = Swift.max(ellipsisRank, k)
            for (label, size) in zip(labels, shape) {
                if let known = sizes[label], known != size {
                    try require(known == 1 || size == 1, "einsum '\(equation)'", shapes, "index '\(name(label))' has sizes \(known) and \(size)")
                    sizes[label] = Swift.max(known, size)
                } else if sizes[label] == nil {
                    sizes[label] = size
                }
            }
            inputs.append(labels)
        }
        var output: [Int]
        if sides.count == 2 {
            let (letters, hasEllipsis, at) = try scan(sides[1], equation: equation, shapes: shapes)
            output = letters
            if hasEllipsis { output.insert(contentsOf: (0..<ellipsisRank).map { -(ellipsisRank - $0) }, at: at) }
            try require(Set(output).count == output.count, "einsum '\(equation)'", shapes, "an output index repeats")
            for l in output { try require(sizes[l] != nil, "einsum '\(equation)'", shapes, "output index '\(name(l))' is in no operand") }
        } else {
            var counts: [Int: Int] = [:]
            for labels in inputs { for l in labels where l > 0 { counts[l, default: 0] += 1 } }
            output = (0..<ellipsisRank).map { -(ellipsisRank - $0) } + counts.filter { $0.value == 1 }.keys.sorted()
        }
        return Plan(inputs: inputs, output: output, sizes: sizes, path: path(inputs, output: output, sizes: sizes))
    }

    private static func scan(_ term: String, equation: String, shapes: [[Int]]) throws(TensorError) -> ([Int], Bool, Int) {
        var letters: [Int] = []
        var ellipsis = false, at = 0
        let chars = Array(term)
        var i = 0
        while i < chars.count {
            if chars[i] == "." {
                try require(i + 2 < chars.count && chars[i + 1] == "." && chars[i + 2] == "." && !ellipsis, "einsum '\(equation)'", shapes, "bad ellipsis")
                ellipsis = true
                at = letters.count
                i += 3
                continue
            }
            try require(chars[i].isASCII && chars[i].isLetter, "einsum '\(equation)'", shapes, "'\(chars[i])' is not an index letter")
            letters.append(Int(chars[i].asciiValue!))
            i += 1
        }
        return (letters, ellipsis, at)
    }

    static func name(_ label: Int) -> String { label > 0 ? String(UnicodeScalar(UInt8(label))) : "..." }

    /// The contraction order: exhaustive for up to 4 operands, greedy beyond. Cost of a pair is
    /// the size of the loop nest over the union of its labels.
    static func path(_ inputs: [[Int]], output: [Int], sizes: [Int: Int]) -> [(Int, Int)] {
        func cost(_ a: [Int], _ b: [Int]) -> Double { Set(a + b).reduce(1.0) { $0 * Double(sizes[$1]!) } }
        func merged(_ terms: [[Int]], _ i: Int, _ j: Int) -> [[Int]] {
            let others = terms.indices.filter { $0 != i && $0 != j }
            let needed = Set(output).union(others.flatMap { terms[$0] })
            let result = Array(Set(terms[i] + terms[j]).filter { needed.contains($0) }).sorted()
            return others.map { terms[$0] } + [result]
        }
        func best(_ terms: [[Int]]) -> (Double, [(Int, Int)]) {
            if terms.count <= 1 { return (0, []) }
            var bestCost = Double.infinity, bestPath: [(Int, Int)] = []
            for i in terms.indices { for j in terms.indices where j > i {
                let (rest, restPath) = best(merged(terms, i, j))
                let total = cost(terms[i], terms[j]) + rest
                if total < bestCost { bestCost = total; bestPath = [(i, j)] + restPath }
            } }
            return (bestCost, bestPath)
        }
        if inputs.count <= 4 { return best(inputs).1 }
        var terms = inputs, steps: [(Int, Int)] = []
        while terms.count > 1 {
            var pick = (0, 1), lowest = Double.infinity
            for i in terms.indices { for j in terms.indices where j > i {
                let c = cost(terms[i], terms[j])
                if c < lowest { lowest = c; pick = (i, j) }
            } }
            steps.append(pick)
            terms = merged(terms, pick.0, pick.1)
        }
        return steps
    }

    /// Repeated labels within one operand become a diagonal view (strides added).
    static func takeDiagonals(_ t: Tensor, _ labels: inout [Int], equation: String, shapes: [[Int]]) throws(TensorError) -> Tensor {
        var tensor = t
        while let j = labels.indices.first(where: { j in labels[..<j].contains(labels[j]) }) {
            let i = labels.firstIndex(of: labels[j])!
            try require(tensor.shape[i] == tensor.shape[j], "einsum '\(equation)'", shapes, "repeated index '\(name(labels[i]))' has sizes \(tensor.shape[i]) and \(tensor.shape[j])")
            if !tensor.isRealized || !tensor.node.isBuffer { tensor = tensor.materialized() }
            guard case let .buffer(storage, offset, strides) = tensor.node.op else { break }
            var newStrides = strides, newShape = tensor.shape
            newStrides[i] += strides[j]
            newStrides.remove(at: j)
            newShape.remove(at: j)
            tensor = Tensor(storage: storage, offset: offset, shape: newShape, strides: newStrides)
            labels.remove(at: j)
        }
        return tensor
    }

    /// Contracts two terms; labels of the result are batch ++ left ++ right.
    static func contract(_ a: Tensor, _ la: [Int], _ b: Tensor, _ lb: [Int], keep: Set<Int>, sizes: [Int: Int]) -> (Tensor, [Int]) {
        var a = a, la = la, b = b, lb = lb
        // Labels only one side has and nobody needs later are summed first.
        func sumOut(_ t: inout Tensor, _ l: inout [Int], other: [Int]) {
            let axes = l.indices.filter { !other.contains(l[$0]) && !keep.contains(l[$0]) }
            guard !axes.isEmpty else { return }
            t = t.sum(axes: axes)
            l = l.indices.filter { !axes.contains($0) }.map { l[$0] }
        }
        sumOut(&a, &la, other: lb)
        sumOut(&b, &lb, other: la)
        let batch = la.filter { lb.contains($0) && keep.contains($0) }
        let contracted = la.filter { lb.contains($0) && !keep.contains($0) }
        let left = la.filter { !lb.contains($0) }
        let right = lb.filter { !la.contains($0) }
        let size = { (ls: [Int]) in ls.reduce(1) { $0 * sizes[$1]! } }
        let (m, k, n) = (size(left), size(contracted), size(right))
        let batchShape = batch.map { sizes[$0]! }
        let ap = a.permuted((batch + left + contracted).map { la.firstIndex(of: $0)! }).reshaped(batchShape + [m, k])
        let bp = b.permuted((batch + contracted + right).map { lb.firstIndex(of: $0)! }).reshaped(batchShape + [k, n])
        let product = matmul(ap, bp).reshaped(batchShape + left.map { sizes[$0]! } + right.map { sizes[$0]! })
        return (product, batch + left + right)
    }
}
