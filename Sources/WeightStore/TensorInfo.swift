import LazyTensor
/// What the header says about one tensor: everything `wpack inspect` shows, known without
/// reading the tensor's data.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    /// nil only for a dtype code from a newer minor version that this reader does not know.
    public let dtype: DType?
    public let dtypeCode: UInt8
    public let shape: [Int]
    /// Absolute byte offset of the stored bytes in the file.
    public let offset: Int
    public let storedBytes: Int
    public let rawBytes: Int
    public let codec: Codec?
    public let codecCode: UInt8
    /// XXH3-64 of the raw (decoded) bytes.
    public let checksum: UInt64

    public var elementCount: Int { shape.reduce(1, *) }
    /// Whether `WeightStore.tensor(_:)` returns a zero-copy view into the mapping.
    public var isMappable: Bool { dtype == .float32 && codec == Codec.none }

    public var checksumHex: String {
        let hex = String(checksum, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
