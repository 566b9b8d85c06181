/// Element types: of a tensor's storage, and of a .wpk file's records. The raw values are the
/// on-disk codes (formats/wpk.md), so a stored tensor and the tensor viewing it name their
/// elements the same way, and the narrower types the quantization work adds take the same slot.
///
/// float32 is the compute type: every arithmetic kernel reads and writes it. int32 and int64
/// tensors hold indices and ids (token ids, argmax and topK results, gather indices) exactly;
/// an arithmetic op on one widens it to float32 first, in a kernel of its own, counted. Other
/// float types in a store widen to float32 on access as a counted copy; the remaining integer
/// and bool types are kept as stored (BERT's position_ids, say) and can be read as raw bytes
/// and unpacked, but not viewed as tensors.
public enum DType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case float32 = 1
    case float16 = 2
    case bfloat16 = 3
    case float64 = 4
    case int8 = 5
    case int16 = 6
    case int32 = 7
    case int64 = 8
    case uint8 = 9
    case uint16 = 10
    case uint32 = 11
    case uint64 = 12
    case bool = 13

    public var byteSize: Int {
        switch self {
        case .int8, .uint8, .bool: 1
        case .float16, .bfloat16, .int16, .uint16: 2
        case .float32, .int32, .uint32: 4
        case .float64, .int64, .uint64: 8
        }
    }

    /// Whether a tensor can hold it directly (float32 for values, int32 and int64 for indices).
    public var isTensorElement: Bool { self == .float32 || self == .int32 || self == .int64 }

    /// Whether `WeightStore.tensor(_:)` can return it as float32 (widening when needed).
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64: true
        default: false
        }
    }

    /// The name used by `wpack inspect`, safetensors and the Python reader.
    public var description: String { name }

    public var name: String {
        switch self {
        case .float32: "float32"
        case .float16: "float16"
        case .bfloat16: "bfloat16"
        case .float64: "float64"
        case .int8: "int8"
        case .int16: "int16"
        case .int32: "int32"
        case .int64: "int64"
        case .uint8: "uint8"
        case .uint16: "uint16"
        case .uint32: "uint32"
        case .uint64: "uint64"
        case .bool: "bool"
        }
    }
}
