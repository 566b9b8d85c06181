import CKernels
import LazyTensor
/// Conversions between the stored float types and float32. Narrow types are widened exactly
/// (a block type to the values its blocks encode); float64 is rounded to nearest (the only
/// lossy case, and only on access).
public enum Widening {
    public static func toFloat32(_ raw: UnsafeRawBufferPointer, dtype: DType, count: Int,
                                 into destination: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .float32:
            for i in 0..<count { destination[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self)) }
        case .float16:
            for i in 0..<count {
                destination[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)))
            }
        case .bfloat16:
            for i in 0..<count {
                let bits = UInt32(raw.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)) << 16
                destination[i] = Float(bitPattern: bits)
            }
        case .float64:
            for i in 0..<count {
                destination[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self)))
            }
        case .q8_0, .q4_0, .q4_1:
            if count > 0, let base = raw.baseAddress { wk_decode(Int32(dtype.rawValue), base, 0, count, destination) }
        default:
            preconditionFailure("\(dtype) is not a float type")
        }
    }
}
