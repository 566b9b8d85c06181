/// The one rule every reader applies to a shape from a file before anything is sized from it.
public enum ShapeRules {
    /// The element count of `dims`, or nil when some size would not fit in Int: the product of
    /// all dimensions with zeros counted as ones, times `elementSize`, must be at most Int.max
    /// (NumPy refuses the same shapes). A zero-element shape passes only if its strides could
    /// be computed.
    public static func elementCount<Dims: Collection>(_ dims: Dims, elementSize: Int) -> Int?
    where Dims.Element: BinaryInteger {
        var nonzero = max(elementSize, 1), count = 1
        for d in dims {
            guard d >= 0, let value = Int(exactly: d) else { return nil }
            let (product, overflow) = nonzero.multipliedReportingOverflow(by: max(value, 1))
            guard !overflow else { return nil }
            nonzero = product
            count = value == 0 ? 0 : count &* value
        }
        return count
    }
}
