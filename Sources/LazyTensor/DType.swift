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
///
/// The block-quantized types (format 1.1) store a row in blocks of 32 values, bit-compatible
/// with GGUF's blocks of the same names: q8_0 is a float16 scale d and 32 int8 q (x = d·q);
/// q4_0 a scale d and 32 4-bit q in 16 bytes, the first 16 values in the low nibbles
/// (x = d·(q - 8)); q4_1 a scale d, a minimum m and the same nibbles (x = d·q + m). They and
/// the halves can be viewed as tensors where they are stored: a matrix product reads them in
/// place, decoding them in cache-sized pieces (gemm/coded.c), a gather decodes only the rows
/// it picks, and every other op widens them first, counted.
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
    case q8_0 = 14
    case q4_0 = 15
    case q4_1 = 16

    /// Bytes per element; for a block-quantized type, bytes per block of `blockLength`.
    public var byteSize: Int {
        switch self {
        case .int8, .uint8, .bool: 1
        case .float16, .bfloat16, .int16, .uint16: 2
        case .float32, .int32, .uint32: 4
        case .float64, .int64, .uint64: 8
        case .q8_0: 34
        case .q4_0: 18
        case .q4_1: 20
        }
    }

    /// Values per block: 32 for the block-quantized types, 1 for every other.
    public var blockLength: Int { isBlockQuantized ? 32 : 1 }

    public var isBlockQuantized: Bool { self == .q8_0 || self == .q4_0 || self == .q4_1 }

    /// The first minor version of the .wpk format that knows the type.
    public var formatMinorVersion: Int { isBlockQuantized ? 1 : 0 }

    /// Bytes of `shape` stored in this type, or nil when the shape cannot be (a block type
    /// needs rank >= 1 and a last dimension that is a multiple of its block length) or the
    /// size overflows.
    public func storedBytes(shape: [Int]) -> Int? {
        var count = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { return nil }
            count = product
        }
        if isBlockQuantized {
            guard let last = shape.last, last % blockLength == 0 else { return nil }
            let (bytes, overflow) = (count / blockLength).multipliedReportingOverflow(by: byteSize)
            return overflow ? nil : bytes
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: byteSize)
        return overflow ? nil : bytes
    }

    /// Weight codings a matrix product reads in place: the halves and the block types.
    public var isCodedWeight: Bool { self == .float16 || self == .bfloat16 || isBlockQuantized }

    /// Whether a tensor can hold it directly (float32 for values, int32 and int64 for indices).
    public var isTensorElement: Bool { self == .float32 || self == .int32 || self == .int64 }

    /// Whether a tensor can view storage of this type: the element types, and coded weights
    /// (which only a matrix product reads as they are; anything else widens them).
    public var isViewable: Bool { isTensorElement || isCodedWeight }

    /// Whether `WeightStore.tensor(_:)` can return it as float32 (widening when needed).
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64, .q8_0, .q4_0, .q4_1: true
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
        case .q8_0: "q8_0"
        case .q4_0: "q4_0"
        case .q4_1: "q4_1"
        }
    }
}
