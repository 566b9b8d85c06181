import CKernels
import LazyTensor

/// float32 values re-encoded in a narrower weight coding (float16, bfloat16, q8_0, q4_0,
/// q4_1), and the error that introduced. The block types round exactly as GGUF's reference
/// quantizers do (ggml's quantize_row_*_ref), so a tensor packed here and one quantized by
/// llama.cpp's tools hold the same bytes.
public enum Quantization {
    /// How far the encoded values are from the originals.
    public struct ConversionError: Sendable, Equatable {
        public var maxAbsolute: Double
        /// sqrt(Σ (x - x')² / Σ x²): 0 for exact, 1 for a tensor encoded as zeros.
        public var relativeRMS: Double

        public var description: String {
            "max abs error \(formatted(maxAbsolute)), relative RMS \(formatted(relativeRMS))"
        }

        private func formatted(_ v: Double) -> String {
            v == 0 ? "0" : String(format: "%.2e", v)
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case notFinite(index: Int)
        case shape(dtype: DType, shape: [Int])
        case unsupported(DType)

        public var description: String {
            switch self {
            case let .notFinite(index): "element \(index) is not finite, so it has no quantized form"
            case let .shape(dtype, shape): "\(dtype) stores rows in blocks of \(dtype.blockLength), and the last dimension of \(shape) is not a multiple of it"
            case let .unsupported(dtype): "\(dtype) is not a weight coding"
            }
        }
    }

    /// The bytes of `values` (row-major, `shape`) in `dtype`, and the error introduced.
    public static func encode(_ values: [Float], shape: [Int], as dtype: DType) throws(Failure) -> (bytes: [UInt8], error: ConversionError) {
        guard dtype.isCodedWeight else { throw .unsupported(dtype) }
        guard let size = dtype.storedBytes(shape: shape), values.count == shape.reduce(1, *) else { throw .shape(dtype: dtype, shape: shape) }
        if dtype.isBlockQuantized, let bad = values.firstIndex(where: { !$0.isFinite }) { throw .notFinite(index: bad) }
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBytes { out in
            values.withUnsafeBufferPointer { x in
                switch dtype {
                case .float16:
                    for i in x.indices { out.storeBytes(of: Float16(x[i]).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                case .bfloat16:
                    for i in x.indices { out.storeBytes(of: bfloat16Bits(x[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                default:
                    for b in 0..<(x.count / 32) {
                        encodeBlock(UnsafeBufferPointer(rebasing: x[(b * 32)..<(b * 32 + 32)]), dtype,
                                    into: out.baseAddress! + b * dtype.byteSize)
                    }
                }
            }
        }
        return (bytes, measure(values, bytes, dtype))
    }

    /// float32 to bfloat16, rounding to nearest even; NaN stays a (quiet) NaN.
    static func bfloat16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(rounded >> 16)
    }

    private static func storeHalf(_ v: Float, _ p: UnsafeMutableRawPointer) {
        p.storeBytes(of: Float16(v).bitPattern.littleEndian, as: UInt16.self)
    }

    private static func encodeBlock(_ x: UnsafeBufferPointer<Float>, _ dtype: DType, into p: UnsafeMutableRawPointer) {
        switch dtype {
        case .q8_0:
            // d = max|x| / 127, q = round(x / d) (half away from zero).
            let amax = x.reduce(0) { Swift.max($0, Swift.abs($1)) }
            let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, p)
            for i in 0..<32 { p.storeBytes(of: Int8((x[i] * id).rounded()), toByteOffset: 2 + i, as: Int8.self) }
        case .q4_0:
            // The value of largest magnitude, with its sign, maps to -8: d = max / -8.
            var amax: Float = 0, extreme: Float = 0
            for v in x where Swift.abs(v) > amax { amax = Swift.abs(v); extreme = v }
            let d = extreme / -8, id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, p)
            for i in 0..<16 {
                let lo = Swift.min(15, Int(x[i] * id + 8.5)), hi = Swift.min(15, Int(x[i + 16] * id + 8.5))
                p.storeBytes(of: UInt8(lo | hi << 4), toByteOffset: 2 + i, as: UInt8.self)
            }
        case .q4_1:
            let low = x.min()!, high = x.max()!
            let d = (high - low) / 15, id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, p)
            storeHalf(low, p + 2)
            for i in 0..<16 {
                let lo = Swift.min(15, Int((x[i] - low) * id + 0.5)), hi = Swift.min(15, Int((x[i + 16] - low) * id + 0.5))
                p.storeBytes(of: UInt8(lo | hi << 4), toByteOffset: 4 + i, as: UInt8.self)
            }
        default:
            preconditionFailure("\(dtype) is not a block type")
        }
    }

    /// Decodes `bytes` and compares with `values`.
    public static func measure(_ values: [Float], _ bytes: [UInt8], _ dtype: DType) -> ConversionError {
        var decoded = [Float](repeating: 0, count: values.count)
        bytes.withUnsafeBytes { raw in
            decoded.withUnsafeMutableBufferPointer { out in
                if let base = raw.baseAddress, !values.isEmpty { wk_decode(Int32(dtype.rawValue), base, 0, values.count, out.baseAddress!) }
            }
        }
        var maxAbs = 0.0, errorSquares = 0.0, squares = 0.0
        for i in values.indices where values[i].isFinite {
            let e = Double(values[i]) - Double(decoded[i])
            maxAbs = Swift.max(maxAbs, Swift.abs(e))
            errorSquares += e * e
            squares += Double(values[i]) * Double(values[i])
        }
        return ConversionError(maxAbsolute: maxAbs, relativeRMS: squares > 0 ? (errorSquares / squares).squareRoot() : (errorSquares > 0 ? 1 : 0))
    }
}
