import LazyTensor
#if canImport(Glibc)
import Glibc
#endif

/// Writes a .wpk file.
///
/// Tensors are declared first (name, dtype, shape, codec and a streaming source); `finish()`
/// then streams each one to disk in turn, hashing as it goes, and back-patches the header.
/// Nothing but the declarations is held in memory, so packing a model larger than memory works.
/// The output is a temporary file beside the target, fsynced and renamed over it: a failure at
/// any point leaves neither a target nor a temporary behind.
public final class WeightStoreWriter {
    public struct Options: Sendable {
        /// Power of two from 64 to 1 MiB.
        public var alignment: Int
        /// zstd level used for tensors declared with codec `.zstd`.
        public var zstdLevel: Int

        public init(alignment: Int = WPKFormat.defaultAlignment, zstdLevel: Int = 3) {
            self.alignment = alignment
            self.zstdLevel = zstdLevel
        }
    }

    private struct Entry {
        var name: String
        var dtype: DType
        var shape: [Int]
        var codec: Codec
        var source: TensorSource
        var rawSize: Int
    }

    public let path: String
    public let options: Options
    private var entries: [Entry] = []
    private var names: Set<String> = []
    private var metadata: [String: MetadataValue] = [:]
    private var finished = false

    /// Page size of this machine, for `--align page`.
    public static var pageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    public init(path: String, options: Options = Options()) throws(WeightStoreError) {
        let a = options.alignment
        guard a >= WPKFormat.minAlignment, a <= WPKFormat.maxAlignment, a & (a - 1) == 0 else {
            throw .invalidAlignment(a)
        }
        guard Zstd.levelRange.contains(options.zstdLevel) else {
            throw .writerMisuse("zstd level \(options.zstdLevel) is outside \(Zstd.levelRange)")
        }
        self.path = path
        self.options = options
    }

    public func setMetadata(_ key: String, _ value: MetadataValue) throws(WeightStoreError) {
        guard !key.isEmpty, key.utf8.count <= WPKFormat.maxNameLength, !key.utf8.contains(0) else {
            throw .invalidMetadata(key: key, reason: "key must be 1 to \(WPKFormat.maxNameLength) bytes without NUL")
        }
        if case .string(let s) = value, s.utf8.contains(0) {
            throw .invalidMetadata(key: key, reason: "value contains a NUL byte")
        }
        metadata[key] = value
    }

    /// Declares a tensor whose raw bytes `source` will stream when `finish()` runs.
    public func addTensor(name: String, dtype: DType, shape: [Int], codec: Codec = .none,
                          source: TensorSource) throws(WeightStoreError) {
        guard !finished else { throw .writerMisuse("the writer has already finished") }
        guard !name.isEmpty, name.utf8.count <= WPKFormat.maxNameLength, !name.utf8.contains(0) else {
            throw .invalidTensor(name: name, reason: "names must be 1 to \(WPKFormat.maxNameLength) bytes without NUL")
        }
        guard !names.contains(name) else { throw .duplicateName(name) }
        guard shape.count <= WPKFormat.maxRank else { throw .rankTooLarge(name: name, rank: shape.count) }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .invalidTensor(name: name, reason: "negative dimension in \(shape)") }
        guard ShapeRules.elementCount(shape, elementSize: dtype.byteSize) != nil else {
            throw .sizeOverflow(name: name)
        }
        guard let size = dtype.storedBytes(shape: shape) else {
            throw .blockShapeInvalid(name: name, dtype: dtype.name, shape: shape)
        }
        names.insert(name)
        // Compressing nothing would only add a frame header.
        entries.append(Entry(name: name, dtype: dtype, shape: shape, codec: size == 0 ? .none : codec,
                             source: source, rawSize: size))
    }

    /// Declares a float32 tensor from a `Tensor` (any view; gathered in row-major order).
    public func addTensor(name: String, _ tensor: Tensor, codec: Codec = .none) throws(WeightStoreError) {
        try addTensor(name: name, dtype: .float32, shape: tensor.shape, codec: codec, source: .tensor(tensor))
    }

    /// Streams every tensor to disk, writes header and footer, fsyncs and renames into place.
    /// `check`, when given, is called with a readable path of the complete file before it is
    /// put in place: if it throws, nothing appears at `path` (pack loads a model this way).
    public func finish(checkingBeforeCommit check: ((String) throws -> Void)? = nil) throws {
        guard !finished else { throw WeightStoreError.writerMisuse("the writer has already finished") }
        finished = true
        // Mappable tensors first, compressed ones after them (a rule of the format), each group
        // in declaration order.
        let ordered = entries.filter { $0.codec == .none } + entries.filter { $0.codec != .none }
        let alignment = UInt64(options.alignment)

        var strings = StringTable()
        var records = ordered.map { e -> TensorRecord in
            var r = TensorRecord()
            (r.nameOffset, r.nameLength) = strings.add(e.name)
            r.dtypeCode = e.dtype.rawValue
            r.codecCode = e.codec.rawValue
            r.rank = UInt8(e.shape.count)
            for (i, d) in e.shape.enumerated() { r.dims[i] = UInt64(d) }
            r.rawSize = UInt64(e.rawSize)
            return r
        }
        let sortedMetadata = metadata.sorted { compareBytes($0.key, $1.key) < 0 }
        let metadataRecords = sortedMetadata.map { key, value -> MetadataRecord in
            var r = MetadataRecord()
            (r.keyOffset, r.keyLength) = strings.add(key)
            r.typeCode = value.typeCode
            switch value {
            case .string(let s): let (o, l) = strings.add(s); (r.a, r.b) = (UInt64(o), UInt64(l))
            case .int(let i): r.a = UInt64(bitPattern: i)
            case .double(let d): r.a = d.bitPattern
            case .bool(let b): r.a = b ? 1 : 0
            }
            return r
        }
        let nameIndex = records.indices.sorted { compareBytes(ordered[$0].name, ordered[$1].name) < 0 }

        let headerLength = WPKFormat.headerFixedSize
            + records.count * (WPKFormat.tensorRecordSize + WPKFormat.nameIndexEntrySize)
            + metadataRecords.count * WPKFormat.metadataRecordSize + strings.bytes.count
        guard headerLength <= WPKFormat.maxHeaderLength else {
            throw WeightStoreError.headerLengthOutOfBounds(length: UInt64(headerLength))
        }
        let dataOffset = alignUp(UInt64(WPKFormat.preambleSize + headerLength), alignment)!

        let out = try FileOutput(path: path)
        do {
            try out.writeZeros(Int(dataOffset))
            for i in records.indices {
                try out.writeZeros(Int(alignUp(out.position, alignment)! - out.position))
                records[i].offset = out.position
                (records[i].storedSize, records[i].checksum) = try stream(ordered[i], to: out)
            }
            let dataLength = out.position - dataOffset
            var header = ByteSink(capacity: headerLength)
            header.write(UInt32(records.count)); header.write(UInt32(metadataRecords.count))
            header.write(UInt64(strings.bytes.count)); header.write(dataOffset); header.write(dataLength)
            for r in records { header.write(r.encoded()) }
            for i in nameIndex { header.write(UInt32(i)) }
            for r in metadataRecords { header.write(r.encoded()) }
            header.write(strings.bytes)
            precondition(header.count == headerLength, "header size computed wrongly")

            let fileSize = out.position + UInt64(WPKFormat.footerSize)
            let headerHash = Checksum.xxh3(header.bytes)
            try out.write(Footer(headerHash: headerHash, fileSize: fileSize).encoded())
            var preamble = Preamble()
            preamble.headerLength = UInt64(headerLength)
            preamble.headerHash = headerHash
            preamble.fileSize = fileSize
            preamble.alignment = UInt32(options.alignment)
            // The oldest version that knows every dtype used, so older readers open what they can.
            preamble.minor = UInt16(ordered.map(\.dtype.formatMinorVersion).max() ?? 0)
            try out.patch(header.bytes, at: UInt64(WPKFormat.preambleSize))
            try out.patch(preamble.encoded(), at: 0)
            if let check {
                try out.sync()
                try check(out.temporaryPath)
            }
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
    }

    /// Streams one tensor; returns its stored size and the checksum of its raw bytes.
    private func stream(_ entry: Entry, to out: FileOutput) throws -> (UInt64, UInt64) {
        let hash = Checksum.Stream()
        let start = out.position
        var produced = 0
        let compressor = entry.codec == .zstd
            ? try Zstd.Compressor(level: options.zstdLevel, rawSize: entry.rawSize) : nil
        try entry.source.produce { chunk in
            produced += chunk.count
            guard produced <= entry.rawSize else {
                throw WeightStoreError.invalidTensor(
                    name: entry.name, reason: "source gave more than the \(entry.rawSize) bytes its shape holds")
            }
            hash.update(chunk)
            if let compressor {
                try compressor.compress(chunk, end: false) { try out.write($0) }
            } else {
                try out.write(chunk)
            }
        }
        guard produced == entry.rawSize else {
            throw WeightStoreError.invalidTensor(
                name: entry.name, reason: "source gave \(produced) bytes, its shape holds \(entry.rawSize)")
        }
        if let compressor {
            try compressor.compress(UnsafeRawBufferPointer(start: nil, count: 0), end: true) {
                try out.write($0)
            }
        }
        return (out.position - start, hash.digest)
    }
}

/// The header's string table: names, keys and string values, deduplicated.
struct StringTable {
    private(set) var bytes: [UInt8] = []
    private var offsets: [String: UInt32] = [:]

    mutating func add(_ s: String) -> (UInt32, UInt32) {
        let length = UInt32(s.utf8.count)
        if let o = offsets[s] { return (o, length) }
        let o = UInt32(bytes.count)
        bytes.append(contentsOf: s.utf8)
        offsets[s] = o
        return (o, length)
    }
}
