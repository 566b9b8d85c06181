/// Element types a .wpk file can hold. The raw values are the on-disk codes (formats/wpk.md).
///
/// float32 is the zero-copy path. Other float types widen to float32 on access as a counted copy;
/// integer and bool tensors are kept as stored (a real model folder has them, e.g. BERT's
/// position_ids) and can be read as raw bytes and unpacked, but not viewed as float tensors.
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

/// How a tensor's bytes are stored.
public enum Codec: UInt8, Sendable, CustomStringConvertible {
    case none = 0
    case zstd = 1

    public var description: String { self == .none ? "none" : "zstd" }
}
