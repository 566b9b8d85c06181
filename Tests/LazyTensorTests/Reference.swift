import Foundation
@testable import LazyTensor

/// A deliberately naive double-precision array: the independent reference every kernel is
/// checked against. Nothing here shares code with the library.
struct Ref: Equatable {
    var shape: [Int]
    var values: [Double]

    init(shape: [Int], values: [Double]) {
        precondition(shape.reduce(1, *) == values.count)
        self.shape = shape
        self.values = values
    }

    init(_ t: Tensor) { self.init(shape: t.shape, values: t.scalars.map(Double.init)) }

    var count: Int { values.count }

    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var r = 1
        for a in shape.indices.reversed() { s[a] = r; r *= shape[a] }
        return s
    }

    static func indices(_ shape: [Int]) -> [[Int]] {
        var result: [[Int]] = [[]]
        for extent in shape { result = result.flatMap { prefix in (0..<extent).map { prefix + [$0] } } }
        return shape.contains(0) ? [] : result
    }

    func at(_ index: [Int]) -> Double {
        var flat = 0
        for (a, i) in index.enumerated() { flat = flat * shape[a] + i }
        return values[flat]
    }

    func permuted(_ order: [Int]) -> Ref {
        let newShape = order.map { shape[$0] }
        return Ref(shape: newShape, values: Ref.indices(newShape).map { idx in
            var src = [Int](repeating: 0, count: shape.count)
            for (i, a) in order.enumerated() { src[a] = idx[i] }
            return at(src)
        })
    }

    func broadcast(to newShape: [Int]) -> Ref {
        let lead = newShape.count - shape.count
        return Ref(shape: newShape, values: Ref.indices(newShape).map { idx in
            at((0..<shape.count).map { shape[$0] == 1 ? 0 : idx[$0 + lead] })
        })
    }

    func reshaped(_ s: [Int]) -> Ref { Ref(shape: s, values: values) }

    func sliced(axis: Int, start: Int, count: Int, step: Int) -> Ref {
        var newShape = shape
        newShape[axis] = count
        return Ref(shape: newShape, values: Ref.indices(newShape).map { idx in
            var src = idx
            src[axis] = start + step * idx[axis]
            return at(src)
        })
    }

    func map(_ f: (Double) -> Double) -> Ref { Ref(shape: shape, values: values.map(f)) }

    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let r = max(a.count, b.count)
        return (0..<r).map { i in
            let x = i < r - a.count ? 1 : a[i - (r - a.count)], y = i < r - b.count ? 1 : b[i - (r - b.count)]
            return x == 1 ? y : x
        }
    }

    static func zip(_ a: Ref, _ b: Ref, _ f: (Double, Double) -> Double) -> Ref {
        let s = broadcastShape(a.shape, b.shape)
        let x = a.broadcast(to: s), y = b.broadcast(to: s)
        return Ref(shape: s, values: Swift.zip(x.values, y.values).map(f))
    }

    func reduce(axes: [Int], keep: Bool = false, _ initial: Double, _ f: (Double, Double) -> Double) -> Ref {
        var kept = shape
        for a in axes { kept[a] = 1 }
        var out = [Double](repeating: initial, count: kept.reduce(1, *))
        let ks = Ref.strides(kept)
        for idx in Ref.indices(shape) {
            var flat = 0
            for a in shape.indices where !axes.contains(a) { flat += idx[a] * ks[a] }
            out[flat] = f(out[flat], at(idx))
        }
        let r = Ref(shape: kept, values: out)
        return keep ? r : r.reshaped(shape.indices.filter { !axes.contains($0) }.map { shape[$0] })
    }

    /// Applies `f` to every row along `axis`.
    func rows(axis: Int, _ f: ([Double]) -> [Double]) -> Ref {
        var out = values
        let st = Ref.strides(shape)
        var outerShape = shape
        outerShape[axis] = 1
        for idx in Ref.indices(outerShape) {
            var base = 0
            for a in shape.indices { base += idx[a] * st[a] }
            let row = (0..<shape[axis]).map { values[base + $0 * st[axis]] }
            for (k, v) in f(row).enumerated() { out[base + k * st[axis]] = v }
        }
        return Ref(shape: shape, values: out)
    }
}

/// Compares a tensor to a reference: |a - r| <= atol + rtol·|r| everywhere, same shape.
func close(_ t: Tensor, _ r: Ref, atol: Double = 1e-5, rtol: Double = 1e-5) -> Bool {
    guard t.shape == r.shape else { return false }
    return Swift.zip(t.scalars, r.values).allSatisfy { a, b in
        (a.isNaN && b.isNaN) || Swift.abs(Double(a) - b) <= atol + rtol * Swift.abs(b)
    }
}

/// The largest error in ulps of float32 at the reference value (for transcendental functions).
func maxULP(_ t: Tensor, _ r: Ref) -> Double {
    Swift.zip(t.scalars, r.values).map { a, b -> Double in
        let f = Float(b)
        let ulp = Double(f.ulp == 0 ? Float.leastNonzeroMagnitude : f.ulp)
        return Swift.abs(Double(a) - b) / ulp
    }.max() ?? 0
}
