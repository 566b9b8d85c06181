/// The fixed numbers of the .wpk container, version 1.0. formats/wpk.md is the specification;
/// this file and that one must agree.
public enum WPKFormat {
    /// `\x89 W P K \r \n \x1a \n`: the high byte catches 7-bit transfers, CR LF and ^Z catch
    /// text-mode line-ending conversion, as in PNG.
    public static let magic: [UInt8] = [0x89, 0x57, 0x50, 0x4B, 0x0D, 0x0A, 0x1A, 0x0A]
    public static let majorVersion: UInt16 = 1
    /// 1.1 adds the block-quantized dtypes; a file is written as 1.0 when it uses none of them.
    public static let minorVersion: UInt16 = 1
    /// Written little-endian; a big-endian writer would produce 0A 0B 0C 0D on disk.
    public static let endianMark: UInt32 = 0x0A0B_0C0D

    public static let preambleSize = 64
    public static let headerFixedSize = 32
    public static let tensorRecordSize = 128
    public static let nameIndexEntrySize = 4
    public static let metadataRecordSize = 32
    public static let footerSize = 32

    public static let defaultAlignment = 64
    public static let minAlignment = 64
    public static let maxAlignment = 1 << 20
    /// A header this large is surely not a real one (safetensors caps at 100 MB; a whole BERT
    /// vocabulary plus tokenizer.json is under 1 MiB).
    public static let maxHeaderLength = 64 << 20
    public static let maxNameLength = 1024
    public static let maxRank = 8

    /// Critical flags understood by this reader (none are defined in 1.0); any other set bit
    /// means the file needs a feature this reader lacks, so it refuses the file.
    public static let knownCriticalFlags: UInt32 = 0
}

/// The 64-byte preamble at offset 0.
struct Preamble: Equatable {
    var major: UInt16 = WPKFormat.majorVersion
    var minor: UInt16 = WPKFormat.minorVersion
    var endianMark: UInt32 = WPKFormat.endianMark
    var criticalFlags: UInt32 = 0
    var compatibleFlags: UInt32 = 0
    var headerLength: UInt64 = 0
    var headerHash: UInt64 = 0
    var fileSize: UInt64 = 0
    var alignment: UInt32 = UInt32(WPKFormat.defaultAlignment)
    var reserved: UInt32 = 0
    var preambleHash: UInt64 = 0

    /// Bytes 0..<56, the part the preamble hash covers.
    func encodedWithoutHash() -> [UInt8] {
        var sink = ByteSink(capacity: WPKFormat.preambleSize)
        sink.write(WPKFormat.magic)
        sink.write(major); sink.write(minor); sink.write(endianMark)
        sink.write(criticalFlags); sink.write(compatibleFlags)
        sink.write(headerLength); sink.write(headerHash); sink.write(fileSize)
        sink.write(alignment); sink.write(reserved)
        return sink.bytes
    }

    func encoded() -> [UInt8] {
        var bytes = encodedWithoutHash()
        let hash = Checksum.xxh3(bytes)
        withUnsafeBytes(of: hash.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Decodes the fields; validation is the store's job. The caller ensures 64 bytes exist.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> Preamble {
        var c = ByteCursor(bytes, at: WPKFormat.magic.count)
        var p = Preamble()
        p.major = c.read(UInt16.self)!; p.minor = c.read(UInt16.self)!
        p.endianMark = c.read(UInt32.self)!
        p.criticalFlags = c.read(UInt32.self)!; p.compatibleFlags = c.read(UInt32.self)!
        p.headerLength = c.read(UInt64.self)!; p.headerHash = c.read(UInt64.self)!
        p.fileSize = c.read(UInt64.self)!
        p.alignment = c.read(UInt32.self)!; p.reserved = c.read(UInt32.self)!
        p.preambleHash = c.read(UInt64.self)!
        return p
    }
}

/// The 32-byte footer: lets a reader detect truncation and a torn write in O(1).
struct Footer: Equatable {
    var headerHash: UInt64
    var fileSize: UInt64
    var reserved: UInt64 = 0

    func encoded() -> [UInt8] {
        var sink = ByteSink(capacity: WPKFormat.footerSize)
        sink.write(headerHash); sink.write(fileSize); sink.write(reserved)
        sink.write(WPKFormat.magic)
        return sink.bytes
    }

    /// nil when the magic is wrong. The caller ensures 32 bytes exist.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> Footer? {
        var c = ByteCursor(bytes)
        let hash = c.read(UInt64.self)!, size = c.read(UInt64.self)!, reserved = c.read(UInt64.self)!
        guard Array(c.readBytes(8)!) == WPKFormat.magic else { return nil }
        return Footer(headerHash: hash, fileSize: size, reserved: reserved)
    }
}

/// One 128-byte tensor record, as stored.
struct TensorRecord: Equatable {
    var nameOffset: UInt32 = 0
    var nameLength: UInt32 = 0
    var dtypeCode: UInt8 = 0
    var codecCode: UInt8 = 0
    var rank: UInt8 = 0
    var reservedByte: UInt8 = 0
    var reservedWord: UInt32 = 0
    var dims: [UInt64] = Array(repeating: 0, count: WPKFormat.maxRank)
    var offset: UInt64 = 0
    var storedSize: UInt64 = 0
    var rawSize: UInt64 = 0
    var checksum: UInt64 = 0
    var reservedTail: (UInt64, UInt64) = (0, 0)

    static func == (a: TensorRecord, b: TensorRecord) -> Bool {
        a.encoded() == b.encoded()
    }

    func encoded() -> [UInt8] {
        var sink = ByteSink(capacity: WPKFormat.tensorRecordSize)
        sink.write(nameOffset); sink.write(nameLength)
        sink.write(dtypeCode); sink.write(codecCode); sink.write(rank); sink.write(reservedByte)
        sink.write(reservedWord)
        for d in dims { sink.write(d) }
        sink.write(offset); sink.write(storedSize); sink.write(rawSize); sink.write(checksum)
        sink.write(reservedTail.0); sink.write(reservedTail.1)
        return sink.bytes
    }

    /// Decodes a record; nil when fewer than 128 bytes remain.
    static func decode(_ c: inout ByteCursor) -> TensorRecord? {
        guard c.remaining >= WPKFormat.tensorRecordSize else { return nil }
        var r = TensorRecord()
        r.nameOffset = c.read(UInt32.self)!; r.nameLength = c.read(UInt32.self)!
        r.dtypeCode = c.read(UInt8.self)!; r.codecCode = c.read(UInt8.self)!
        r.rank = c.read(UInt8.self)!; r.reservedByte = c.read(UInt8.self)!
        r.reservedWord = c.read(UInt32.self)!
        for i in 0..<WPKFormat.maxRank { r.dims[i] = c.read(UInt64.self)! }
        r.offset = c.read(UInt64.self)!; r.storedSize = c.read(UInt64.self)!
        r.rawSize = c.read(UInt64.self)!; r.checksum = c.read(UInt64.self)!
        r.reservedTail = (c.read(UInt64.self)!, c.read(UInt64.self)!)
        return r
    }
}

/// A typed metadata value. Strings are what most metadata is; numbers and flags keep their type.
public enum MetadataValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)

    var typeCode: UInt8 {
        switch self {
        case .string: 1
        case .int: 2
        case .double: 3
        case .bool: 4
        }
    }

    public var description: String {
        switch self {
        case .string(let s): s
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .bool(let b): String(b)
        }
    }
}

/// One 32-byte metadata record, as stored. For strings, `a` is the value's offset in the string
/// table and `b` its length; for other types `a` holds the value's bits and `b` is zero.
struct MetadataRecord: Equatable {
    var keyOffset: UInt32 = 0
    var keyLength: UInt32 = 0
    var typeCode: UInt8 = 0
    var reserved: [UInt8] = Array(repeating: 0, count: 7)
    var a: UInt64 = 0
    var b: UInt64 = 0

    func encoded() -> [UInt8] {
        var sink = ByteSink(capacity: WPKFormat.metadataRecordSize)
        sink.write(keyOffset); sink.write(keyLength); sink.write(typeCode); sink.write(reserved)
        sink.write(a); sink.write(b)
        return sink.bytes
    }

    static func decode(_ c: inout ByteCursor) -> MetadataRecord? {
        guard c.remaining >= WPKFormat.metadataRecordSize else { return nil }
        var r = MetadataRecord()
        r.keyOffset = c.read(UInt32.self)!; r.keyLength = c.read(UInt32.self)!
        r.typeCode = c.read(UInt8.self)!; r.reserved = Array(c.readBytes(7)!)
        r.a = c.read(UInt64.self)!; r.b = c.read(UInt64.self)!
        return r
    }
}
