#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `print(t)`: the shape, dtype, strides and state, then the values as NumPy prints them
/// (nested brackets, one common format, long axes summarised as first three ... last three).
/// A lazy tensor is evaluated for the preview, as MLX does when it prints; `explain()` says
/// what that runs without running it.
extension Tensor: CustomStringConvertible, CustomDebugStringConvertible {
    /// Tensors with more elements than this print summarised, as NumPy's threshold.
    static let summaryThreshold = 1000
    static let edgeItems = 3

    public var description: String {
        let state: String
        if node.isBuffer {
            state = "view of " + (storage.kind == .mapped ? "a mapped file" : "heap storage")
        } else if node.realized != nil {
            state = "realized"
        } else {
            state = "lazy, evaluated for this preview"
        }
        let realized = materializedForPreview()
        let header = "Tensor(shape: \(shape), dtype: \(dtype), strides: \(strides), \(state)\(isContiguous ? ", contiguous" : ""))"
        return header + "\n" + Tensor.preview(realized)
    }

    public var debugDescription: String { description }

    private func materializedForPreview() -> Tensor {
        node.realized != nil ? self : materialized()
    }

    /// The values of a realized tensor in NumPy's layout.
    static func preview(_ t: Tensor) -> String {
        let shape = t.shape
        let summarise = t.scalarCount > summaryThreshold
        // Only the elements that will be shown are read.
        var shown: [[Int]] = shape.map { n in
            summarise && n > 2 * edgeItems ? Array(0..<edgeItems) + Array((n - edgeItems)..<n) : Array(0..<n)
        }
        if shape.contains(0) { shown = shape.map { _ in [] } }
        let view = t.bufferView
        let values: [Int: Double] = withExtendedLifetime(view.storage) {
            var out: [Int: Double] = [:]
            func visit(_ axis: Int, _ offset: Int, _ flat: Int) {
                if axis == shape.count {
                    let raw = UnsafeRawPointer(view.storage.baseAddress)
                    out[flat] = t.dtype == .float32 ? Double(raw.load(fromByteOffset: (view.offset + offset) * 4, as: Float.self))
                        : Double(Executor.loadIndex(raw, t.dtype, view.offset + offset))
                    return
                }
                let inner = shape[(axis + 1)...].reduce(1, *)
                for i in shown[axis] { visit(axis + 1, offset + i * view.strides[axis], flat + i * inner) }
            }
            if !shape.contains(0) { visit(0, 0, 0) }
            return out
        }
        let format = NumberFormat(values.values, integers: t.dtype != .float32)
        let width = values.values.map { format.text($0).count }.max() ?? 0
        func render(_ axis: Int, _ flat: Int, indent: Int) -> String {
            if axis == shape.count {
                let s = format.text(values[flat] ?? 0)
                return String(repeating: " ", count: width - s.count) + s
            }
            let inner = shape[(axis + 1)...].reduce(1, *)
            var parts: [String] = []
            let n = shape[axis]
            for (j, i) in shown[axis].enumerated() {
                if summarise && n > 2 * edgeItems && j == edgeItems { parts.append("...") }
                parts.append(render(axis + 1, flat + i * inner, indent: indent + 1))
            }
            let separator = axis == shape.count - 1 ? ", "
                : "," + String(repeating: "\n", count: shape.count - axis - 1) + String(repeating: " ", count: indent + 1)
            return "[" + parts.joined(separator: separator) + "]"
        }
        return render(0, 0, indent: 0)
    }

    /// One format for every element, chosen as NumPy does: integers as integers (floats with a
    /// trailing "."), otherwise fixed with 4 decimals, or scientific when the magnitudes span
    /// too far for that.
    struct NumberFormat {
        enum Style { case integer, wholeFloat, fixed, scientific }
        let style: Style

        init<S: Sequence>(_ values: S, integers: Bool) where S.Element == Double {
            let finite = values.filter { $0.isFinite }
            if integers { style = .integer; return }
            if finite.allSatisfy({ $0 == $0.rounded() && Swift.abs($0) < 1e16 }) { style = .wholeFloat; return }
            let magnitudes = finite.map(Swift.abs).filter { $0 != 0 }
            let (low, high) = (magnitudes.min() ?? 1, magnitudes.max() ?? 1)
            style = high >= 1e8 || low < 1e-4 || high / low > 1e3 && low < 1e-2 ? .scientific : .fixed
        }

        func text(_ v: Double) -> String {
            if v.isNaN { return "nan" }
            if v.isInfinite { return v < 0 ? "-inf" : "inf" }
            switch style {
            case .integer: return String(Int(v))
            case .wholeFloat: return String(Int(v)) + "."
            case .fixed: return NumberFormat.fixed(v, decimals: 4)
            case .scientific:
                if v == 0 { return "0.0000e+00" }
                var exponent = Int(Glibc.floor(Glibc.log10(Swift.abs(v))))
                var mantissa = v / Glibc.pow(10, Double(exponent))
                if Swift.abs((mantissa * 10000).rounded()) >= 100_000 { mantissa /= 10; exponent += 1 }
                let e = Swift.abs(exponent)
                return NumberFormat.fixed(mantissa, decimals: 4) + "e" + (exponent < 0 ? "-" : "+") + (e < 10 ? "0" : "") + String(e)
            }
        }

        static func fixed(_ v: Double, decimals: Int) -> String {
            let scale = Glibc.pow(10, Double(decimals))
            let scaled = (Swift.abs(v) * scale).rounded()
            let whole = Int(scaled / scale), fraction = Int(scaled.truncatingRemainder(dividingBy: scale))
            let digits = String(fraction)
            let sign = v < 0 && scaled != 0 ? "-" : ""
            return sign + String(whole) + "." + String(repeating: "0", count: decimals - digits.count) + digits
        }
    }
}
