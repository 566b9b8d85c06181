/// Elementwise operations with NumPy broadcasting. Each only records a node; a chain of them,
/// with its broadcasts and transposes, becomes one loop inside whatever kernel consumes it.
extension Tensor {
    /// NumPy's broadcast of two shapes (a shape error when they do not broadcast).
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        do { return try broadcast(a, b, op: "broadcast") } catch {
            reportValue(error)
            return paddedMaximum(a, b)
        }
    }

    static func broadcast(_ a: [Int], _ b: [Int], op: String) throws(TensorError) -> [Int] {
        let rank = Swift.max(a.count, b.count)
        var out: [Int] = []
        for i in 0..<rank {
            let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            try require(x == y || x == 1 || y == 1, op, [a, b], "the shapes do not broadcast")
            out.append(x == 1 ? y : x)
        }
        return out
    }

    /// The larger extent per axis, right-aligned: the stand-in shape of a failed broadcast.
    static func paddedMaximum(_ a: [Int], _ b: [Int]) -> [Int] {
        let rank = Swift.max(a.count, b.count)
        return (0..<rank).map { i in
            Swift.max(i < rank - a.count ? 1 : a[i - (rank - a.count)], i < rank - b.count ? 1 : b[i - (rank - b.count)])
        }
    }

    static func constant(_ value: Float) -> Tensor { Tensor(node: Node(.constant(value), [], shape: [])) }

    func unary(_ op: UnaryOp) -> Tensor { Tensor(node: Node(.unary(op), [node], shape: shape)) }

    static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) -> Tensor {
        checked(paddedMaximum(a.shape, b.shape)) { () throws(TensorError) in
            let shape = try broadcast(a.shape, b.shape, op: op.name)
            return Tensor(node: Node(.binary(op), [a.expanded(to: shape).node, b.expanded(to: shape).node], shape: shape))
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { binary(.add, a, b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { binary(.sub, a, b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { binary(.mul, a, b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { binary(.div, a, b) }
    public static func + (a: Tensor, b: Float) -> Tensor { binary(.add, a, constant(b)) }
    public static func - (a: Tensor, b: Float) -> Tensor { binary(.sub, a, constant(b)) }
    public static func * (a: Tensor, b: Float) -> Tensor { binary(.mul, a, constant(b)) }
    public static func / (a: Tensor, b: Float) -> Tensor { binary(.div, a, constant(b)) }
    public static func + (a: Float, b: Tensor) -> Tensor { binary(.add, constant(a), b) }
    public static func - (a: Float, b: Tensor) -> Tensor { binary(.sub, constant(a), b) }
    public static func * (a: Float, b: Tensor) -> Tensor { binary(.mul, constant(a), b) }
    public static func / (a: Float, b: Tensor) -> Tensor { binary(.div, constant(a), b) }
    public static prefix func - (a: Tensor) -> Tensor { a.unary(.neg) }

    public func abs() -> Tensor { unary(.abs) }
    public func exp() -> Tensor { unary(.exp) }
    public func log() -> Tensor { unary(.log) }
    public func sqrt() -> Tensor { unary(.sqrt) }
    public func rsqrt() -> Tensor { unary(.rsqrt) }
    public func tanh() -> Tensor { unary(.tanh) }
    public func sigmoid() -> Tensor { unary(.sigmoid) }
    public func relu() -> Tensor { unary(.relu) }
    public func silu() -> Tensor { unary(.silu) }
    public func erf() -> Tensor { unary(.erf) }
    public func squared() -> Tensor { unary(.square) }
    public func reciprocal() -> Tensor { unary(.reciprocal) }
    public func sin() -> Tensor { unary(.sin) }
    public func cos() -> Tensor { unary(.cos) }
    public func floor() -> Tensor { unary(.floor) }

    /// PyTorch's hardsigmoid: relu6(x + 3) / 6, one instruction.
    public func hardsigmoid() -> Tensor { unary(.hardsigmoid) }
    /// PyTorch's hardswish (MobileNetV3): x · relu6(x + 3) / 6, one instruction.
    public func hardswish() -> Tensor { unary(.hardswish) }

    /// Every element limited to min ... max (NaN stays NaN, as in PyTorch's clamp).
    public func clamped(min low: Float? = nil, max high: Float? = nil) -> Tensor {
        var t = self
        if let low { t = Tensor.binary(.max, t, Tensor.constant(low)) }
        if let high { t = Tensor.binary(.min, t, Tensor.constant(high)) }
        return t
    }

    /// min(max(x, 0), 6): MobileNet's activation.
    public func relu6() -> Tensor { clamped(min: 0, max: 6) }

    public enum GELUApproximation: Sendable { case none, tanh }

    /// Gaussian error linear unit: x·Φ(x) with the erf form (BERT's, PyTorch's default) or the
    /// tanh approximation.
    public func gelu(approximate: GELUApproximation = .none) -> Tensor {
        unary(approximate == .none ? .geluErf : .geluTanh)
    }

    public func pow(_ exponent: Float) -> Tensor { Tensor.binary(.pow, self, Tensor.constant(exponent)) }
    public func pow(_ exponent: Tensor) -> Tensor { Tensor.binary(.pow, self, exponent) }

    public func less(_ other: Tensor) -> Tensor { Tensor.binary(.less, self, other) }
    public func lessEqual(_ other: Tensor) -> Tensor { Tensor.binary(.lessEqual, self, other) }
    public func greater(_ other: Tensor) -> Tensor { Tensor.binary(.greater, self, other) }
    public func greaterEqual(_ other: Tensor) -> Tensor { Tensor.binary(.greaterEqual, self, other) }
    public func equal(_ other: Tensor) -> Tensor { Tensor.binary(.equal, self, other) }
    public func notEqual(_ other: Tensor) -> Tensor { Tensor.binary(.notEqual, self, other) }
    public func less(_ value: Float) -> Tensor { Tensor.binary(.less, self, Tensor.constant(value)) }
    public func greater(_ value: Float) -> Tensor { Tensor.binary(.greater, self, Tensor.constant(value)) }

    /// NumPy's where: `condition != 0 ? a : b`, all three broadcast together.
    public static func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        checked(paddedMaximum(paddedMaximum(condition.shape, a.shape), b.shape)) { () throws(TensorError) in
            let shapes = [condition.shape, a.shape, b.shape]
            let shape: [Int]
            do { shape = try broadcast(try broadcast(condition.shape, a.shape, op: "where"), b.shape, op: "where") } catch {
                throw TensorError(op: "where", shapes: shapes, reason: "the shapes do not broadcast")
            }
            return Tensor(node: Node(.select, [condition.expanded(to: shape).node, a.expanded(to: shape).node,
                                               b.expanded(to: shape).node], shape: shape))
        }
    }

    public static func select(_ condition: Tensor, _ a: Tensor, _ b: Float) -> Tensor { select(condition, a, constant(b)) }
}

public func exp(_ t: Tensor) -> Tensor { t.exp() }
public func log(_ t: Tensor) -> Tensor { t.log() }
public func sqrt(_ t: Tensor) -> Tensor { t.sqrt() }
public func tanh(_ t: Tensor) -> Tensor { t.tanh() }
public func erf(_ t: Tensor) -> Tensor { t.erf() }
public func sin(_ t: Tensor) -> Tensor { t.sin() }
public func cos(_ t: Tensor) -> Tensor { t.cos() }
public func floor(_ t: Tensor) -> Tensor { t.floor() }
public func abs(_ t: Tensor) -> Tensor { t.abs() }
public func pow(_ t: Tensor, _ e: Float) -> Tensor { t.pow(e) }
public func max(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.binary(.max, a, b) }
public func min(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.binary(.min, a, b) }
public func max(_ a: Tensor, _ b: Float) -> Tensor { Tensor.binary(.max, a, Tensor.constant(b)) }
public func min(_ a: Tensor, _ b: Float) -> Tensor { Tensor.binary(.min, a, Tensor.constant(b)) }
