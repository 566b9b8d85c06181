import LazyTensor
/// Everything that can be wrong with a .wpk file or a request to a store. Each case names the
/// rule that was broken (formats/wpk.md, "Validation"), so tests can check that a crafted file is
/// refused for exactly the reason it was crafted for.
public enum WeightStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    // The file as a whole
    case io(path: String, message: String)
    case fileChanged(path: String)
    case fileTooSmall(size: Int)
    case notAWpkFile(hint: String)
    case badEndianMark(UInt32)
    case unsupportedMajorVersion(major: Int, minor: Int)
    case preambleChecksumMismatch
    case reservedFieldNotZero(field: String)
    case unknownCriticalFlags(UInt32)
    case invalidAlignment(Int)
    case fileSizeMismatch(declared: UInt64, actual: Int)
    case footerMismatch(field: String)
    case headerLengthOutOfBounds(length: UInt64)
    case headerChecksumMismatch
    case countsExceedHeader(tensors: UInt32, metadata: UInt32)
    case headerLengthMismatch(declared: UInt64, computed: UInt64)
    case dataOffsetInvalid(declared: UInt64, expected: UInt64)
    case dataLengthMismatch(declared: UInt64, computed: UInt64)
    case nonZeroPadding(offset: UInt64)

    // Strings and names
    case stringOutOfBounds(what: String)
    case invalidName(record: Int, reason: String)
    case invalidNameIndex(reason: String)
    case duplicateName(String)
    case invalidMetadata(key: String, reason: String)
    case duplicateMetadataKey(String)

    // Tensor records
    case unknownDType(name: String, code: UInt8)
    case unknownCodec(name: String, code: UInt8)
    case rankTooLarge(name: String, rank: Int)
    case sizeOverflow(name: String)
    case rawSizeMismatch(name: String, declared: UInt64, expected: UInt64)
    /// A block-quantized tensor whose last dimension is not a whole number of blocks.
    case blockShapeInvalid(name: String, dtype: String, shape: [Int])
    case storedSizeMismatch(name: String, stored: UInt64, raw: UInt64)
    case misalignedOffset(name: String, offset: UInt64, alignment: Int)
    case layoutMismatch(name: String, offset: UInt64, expected: UInt64)
    case compressedBeforeMappable(name: String)
    case tensorOutOfBounds(name: String)

    // Access
    case tensorNotFound(String)
    case checksumMismatch(name: String)
    case decompressionFailed(name: String, message: String)
    case decodedTooLarge(name: String, bytes: Int, limit: Int)
    case notFloatingPoint(name: String, dtype: String)

    // Writing
    case invalidTensor(name: String, reason: String)
    case writerMisuse(String)
    case compressionFailed(String)

    /// One line whatever the file held: names from a file are interpolated into these
    /// messages, and control characters in them are escaped here.
    public var description: String { DisplayText.escaped(message, backslash: false) }

    private var message: String {
        switch self {
        case let .io(path, message): "\(path): \(message)"
        case let .fileChanged(path):
            "\(path): the file was changed in place while wpack was reading it; results from it cannot be trusted (replace files by renaming a new one over them)"
        case let .fileTooSmall(size): "file is \(size) bytes, smaller than the smallest .wpk file (128 + 32 bytes)"
        case let .notAWpkFile(hint): "not a .wpk file: \(hint)"
        case let .badEndianMark(mark): "endianness mark is 0x\(String(mark, radix: 16)), expected 0xa0b0c0d (little-endian)"
        case let .unsupportedMajorVersion(major, minor): "format version \(major).\(minor) is not supported (this reader reads 1.x)"
        case .preambleChecksumMismatch: "preamble checksum mismatch: the first 64 bytes are damaged"
        case let .reservedFieldNotZero(field): "reserved field \(field) is not zero"
        case let .unknownCriticalFlags(flags): "file needs features this reader lacks (critical flags 0x\(String(flags, radix: 16)))"
        case let .invalidAlignment(a): "alignment \(a) is not a power of two between 64 and 1 MiB"
        case let .fileSizeMismatch(declared, actual): "file is \(actual) bytes but its preamble says \(declared): truncated or extended"
        case let .footerMismatch(field): "footer does not match the preamble (\(field)): the file is truncated or torn"
        case let .headerLengthOutOfBounds(length): "header length \(length) does not fit in the file (or exceeds the 64 MiB cap)"
        case .headerChecksumMismatch: "header checksum mismatch: the tensor table is damaged"
        case let .countsExceedHeader(t, m): "\(t) tensor records and \(m) metadata records do not fit in the header"
        case let .headerLengthMismatch(declared, computed): "header length \(declared) disagrees with its contents (\(computed) bytes)"
        case let .dataOffsetInvalid(declared, expected): "data section starts at \(declared), expected \(expected)"
        case let .dataLengthMismatch(declared, computed): "data section length \(declared) disagrees with the tensors (\(computed) bytes)"
        case let .nonZeroPadding(offset): "padding byte at offset \(offset) is not zero"
        case let .stringOutOfBounds(what): "\(what) lies outside the string table"
        case let .invalidName(record, reason): "tensor record \(record): \(reason)"
        case let .invalidNameIndex(reason): "name index is invalid: \(reason)"
        case let .duplicateName(name): "tensor name '\(name)' appears more than once"
        case let .invalidMetadata(key, reason): "metadata '\(key)': \(reason)"
        case let .duplicateMetadataKey(key): "metadata key '\(key)' appears more than once or out of order"
        case let .unknownDType(name, code): "tensor '\(name)': unknown dtype code \(code)"
        case let .unknownCodec(name, code): "tensor '\(name)': unknown codec code \(code)"
        case let .rankTooLarge(name, rank): "tensor '\(name)': rank \(rank) exceeds 8"
        case let .sizeOverflow(name): "tensor '\(name)': element count times dtype size overflows"
        case let .rawSizeMismatch(name, declared, expected): "tensor '\(name)': raw size \(declared) but shape and dtype give \(expected)"
        case let .blockShapeInvalid(name, dtype, shape): "tensor '\(name)': \(dtype) is stored in blocks of 32 along the last axis, but its shape is \(shape)"
        case let .storedSizeMismatch(name, stored, raw): "tensor '\(name)': uncompressed but stored size \(stored) != raw size \(raw)"
        case let .misalignedOffset(name, offset, alignment): "tensor '\(name)': offset \(offset) is not a multiple of \(alignment)"
        case let .layoutMismatch(name, offset, expected): "tensor '\(name)': offset \(offset), expected \(expected) (tensors overlap, are out of order or leave a gap)"
        case let .compressedBeforeMappable(name): "tensor '\(name)': uncompressed tensor stored after a compressed one"
        case let .tensorOutOfBounds(name): "tensor '\(name)': data extends past the data section"
        case let .tensorNotFound(name): "no tensor named '\(name)'"
        case let .checksumMismatch(name): "tensor '\(name)': checksum mismatch, its bytes are damaged"
        case let .decompressionFailed(name, message): "tensor '\(name)': zstd data is damaged (\(message))"
        case let .decodedTooLarge(name, bytes, limit):
            "tensor '\(name)': decoding needs \(bytes) bytes, which this machine cannot provide (\(limit) bytes of memory)"
        case let .notFloatingPoint(name, dtype): "tensor '\(name)' holds \(dtype), which a tensor cannot hold (float types, int32 and int64 can)"
        case let .invalidTensor(name, reason): "tensor '\(name)': \(reason)"
        case let .writerMisuse(message): message
        case let .compressionFailed(message): "zstd compression failed: \(message)"
        }
    }
}
