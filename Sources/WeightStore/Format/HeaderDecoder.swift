import LazyTensor
/// Validates every byte of the preamble, header and footer of a mapped .wpk file and decodes
/// the tensor table and metadata.
///
/// It touches only the first and last pages of the file plus the header: its cost grows with
/// the number of tensors, never with their size. Rules are checked in a fixed order, each with
/// its own error, and every count and length is checked against the bytes that remain before
/// anything is allocated from it.
struct HeaderDecoder {
    struct Result {
        var preamble: Preamble
        var tensors: [TensorInfo]
        /// Record numbers ordered by name bytes: binary search needs no dictionary.
        var nameIndex: [Int]
        var metadata: [MetadataEntry]
        var dataOffset: Int
        var dataLength: Int
        var headerEnd: Int
    }

    static func decode(_ file: UnsafeRawBufferPointer) throws(WeightStoreError) -> Result {
        let size = file.count
        let minimum = WPKFormat.preambleSize + WPKFormat.headerFixedSize + WPKFormat.footerSize
        guard size >= minimum else {
            if size >= 8, !startsWithMagic(file) { throw .notAWpkFile(hint: sniff(file)) }
            throw .fileTooSmall(size: size)
        }
        guard startsWithMagic(file) else { throw .notAWpkFile(hint: sniff(file)) }

        let preambleBytes = UnsafeRawBufferPointer(rebasing: file[0..<WPKFormat.preambleSize])
        let p = Preamble.decode(preambleBytes)
        guard p.endianMark == WPKFormat.endianMark else { throw .badEndianMark(p.endianMark) }
        guard p.major == WPKFormat.majorVersion else {
            throw .unsupportedMajorVersion(major: Int(p.major), minor: Int(p.minor))
        }
        guard Checksum.xxh3(UnsafeRawBufferPointer(rebasing: preambleBytes[0..<56])) == p.preambleHash else {
            throw .preambleChecksumMismatch
        }
        // A newer minor version may give meaning to reserved fields and compatible flags;
        // this reader ignores them there, and insists on zero in files of its own version.
        let sameMinor = p.minor <= WPKFormat.minorVersion
        if sameMinor && p.reserved != 0 { throw .reservedFieldNotZero(field: "preamble.reserved") }
        guard p.criticalFlags & ~WPKFormat.knownCriticalFlags == 0 else {
            throw .unknownCriticalFlags(p.criticalFlags & ~WPKFormat.knownCriticalFlags)
        }
        let alignment = Int(p.alignment)
        guard alignment >= WPKFormat.minAlignment, alignment <= WPKFormat.maxAlignment,
              alignment & (alignment - 1) == 0 else { throw .invalidAlignment(alignment) }
        guard p.fileSize == UInt64(size) else { throw .fileSizeMismatch(declared: p.fileSize, actual: size) }

        let footerBytes = UnsafeRawBufferPointer(rebasing: file[(size - WPKFormat.footerSize)...])
        guard let footer = Footer.decode(footerBytes) else { throw .footerMismatch(field: "magic") }
        guard footer.fileSize == p.fileSize else { throw .footerMismatch(field: "file size") }
        guard footer.headerHash == p.headerHash else { throw .footerMismatch(field: "header hash") }
        if sameMinor && footer.reserved != 0 { throw .reservedFieldNotZero(field: "footer.reserved") }

        let available = UInt64(size - WPKFormat.preambleSize - WPKFormat.footerSize)
        guard p.headerLength >= UInt64(WPKFormat.headerFixedSize), p.headerLength <= available,
              p.headerLength <= UInt64(WPKFormat.maxHeaderLength) else {
            throw .headerLengthOutOfBounds(length: p.headerLength)
        }
        let headerLength = Int(p.headerLength)
        let headerEnd = WPKFormat.preambleSize + headerLength
        let header = UnsafeRawBufferPointer(rebasing: file[WPKFormat.preambleSize..<headerEnd])
        guard Checksum.xxh3(header) == p.headerHash else { throw .headerChecksumMismatch }

        var c = ByteCursor(header)
        let tensorCount = c.read(UInt32.self)!, metadataCount = c.read(UInt32.self)!
        let stringTableLength = c.read(UInt64.self)!
        let dataOffset = c.read(UInt64.self)!, dataLength = c.read(UInt64.self)!

        // Counts are bounded by the header's own length before any array is sized from them.
        let perTensor = UInt64(WPKFormat.tensorRecordSize + WPKFormat.nameIndexEntrySize)
        let tables = UInt64(tensorCount) * perTensor + UInt64(metadataCount) * UInt64(WPKFormat.metadataRecordSize)
        let body = UInt64(headerLength - WPKFormat.headerFixedSize)
        guard tables <= body else { throw .countsExceedHeader(tensors: tensorCount, metadata: metadataCount) }
        let (computed, overflow) = (UInt64(WPKFormat.headerFixedSize) + tables).addingReportingOverflow(stringTableLength)
        guard !overflow, computed == p.headerLength else {
            throw .headerLengthMismatch(declared: p.headerLength, computed: overflow ? .max : computed)
        }
        let expectedDataOffset = alignUp(UInt64(headerEnd), UInt64(alignment))!
        guard dataOffset == expectedDataOffset else {
            throw .dataOffsetInvalid(declared: dataOffset, expected: expectedDataOffset)
        }
        let footerStart = UInt64(size - WPKFormat.footerSize)
        guard dataOffset <= footerStart, dataLength == footerStart - dataOffset else {
            throw .dataLengthMismatch(declared: dataLength, computed: footerStart >= dataOffset ? footerStart - dataOffset : 0)
        }
        for position in headerEnd..<Int(dataOffset) where file[position] != 0 {
            throw .nonZeroPadding(offset: UInt64(position))
        }

        let recordsStart = WPKFormat.headerFixedSize
        let indexStart = recordsStart + Int(tensorCount) * WPKFormat.tensorRecordSize
        let metadataStart = indexStart + Int(tensorCount) * WPKFormat.nameIndexEntrySize
        let stringsStart = metadataStart + Int(metadataCount) * WPKFormat.metadataRecordSize
        let strings = UnsafeRawBufferPointer(rebasing: header[stringsStart...])

        // Tensor records: names, types, sizes, and the canonical layout in file order.
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(Int(tensorCount))
        var cursor = ByteCursor(header, at: recordsStart)
        var expectedOffset = dataOffset
        var seenCompressed = false
        for recordNumber in 0..<Int(tensorCount) {
            let r = TensorRecord.decode(&cursor)!
            let name = try decodeString(strings, offset: UInt64(r.nameOffset), length: UInt64(r.nameLength),
                                        what: "name of tensor record \(recordNumber)",
                                        invalid: { .invalidName(record: recordNumber, reason: $0) })
            guard !name.isEmpty else { throw .invalidName(record: recordNumber, reason: "empty name") }
            guard r.nameLength <= UInt32(WPKFormat.maxNameLength) else {
                throw .invalidName(record: recordNumber, reason: "name longer than \(WPKFormat.maxNameLength) bytes")
            }
            if sameMinor && (r.reservedByte != 0 || r.reservedWord != 0 || r.reservedTail != (0, 0)) {
                throw .reservedFieldNotZero(field: "record '\(name)'")
            }
            // A type added in a later minor version is unknown in a file that claims an earlier one.
            let dtype = DType(rawValue: r.dtypeCode).flatMap { $0.formatMinorVersion <= Int(p.minor) ? $0 : nil }
            if dtype == nil && sameMinor { throw .unknownDType(name: name, code: r.dtypeCode) }
            let codec = Codec(rawValue: r.codecCode)
            if codec == nil && sameMinor { throw .unknownCodec(name: name, code: r.codecCode) }
            guard r.rank <= UInt8(WPKFormat.maxRank) else { throw .rankTooLarge(name: name, rank: Int(r.rank)) }
            let rank = Int(r.rank)
            if r.dims[rank...].contains(where: { $0 != 0 }) {
                throw .reservedFieldNotZero(field: "unused dimensions of '\(name)'")
            }
            // Sizes must fit in Int with every dimension counted, zeros as ones (NumPy's rule):
            // [0, 2^62, 2^62] holds nothing, yet its strides overflow on any access.
            guard ShapeRules.elementCount(r.dims[0..<rank], elementSize: dtype?.byteSize ?? 1) != nil else {
                throw .sizeOverflow(name: name)
            }
            if let dtype {
                let shape = r.dims[0..<rank].map { Int($0) }
                guard let bytes = dtype.storedBytes(shape: shape).map(UInt64.init) else {
                    throw .blockShapeInvalid(name: name, dtype: dtype.name, shape: shape)
                }
                guard r.rawSize == bytes else { throw .rawSizeMismatch(name: name, declared: r.rawSize, expected: bytes) }
            }
            // An unknown dtype from a newer minor version has no size to check the record
            // against, but its sizes must still be representable to be listed.
            guard r.rawSize <= UInt64(Int.max), r.storedSize <= UInt64(Int.max) else { throw .sizeOverflow(name: name) }
            if codec == Codec.none, r.storedSize != r.rawSize {
                throw .storedSizeMismatch(name: name, stored: r.storedSize, raw: r.rawSize)
            }
            if codec != Codec.none { seenCompressed = true } else if seenCompressed {
                throw .compressedBeforeMappable(name: name)
            }
            guard r.offset % UInt64(alignment) == 0 else {
                throw .misalignedOffset(name: name, offset: r.offset, alignment: alignment)
            }
            guard let canonical = alignUp(expectedOffset, UInt64(alignment)), r.offset == canonical else {
                throw .layoutMismatch(name: name, offset: r.offset, expected: alignUp(expectedOffset, UInt64(alignment)) ?? .max)
            }
            let (end, o) = r.offset.addingReportingOverflow(r.storedSize)
            guard !o, end <= footerStart else { throw .tensorOutOfBounds(name: name) }
            expectedOffset = end
            tensors.append(TensorInfo(
                name: name, dtype: dtype, dtypeCode: r.dtypeCode,
                shape: r.dims[0..<rank].map { Int($0) }, offset: Int(r.offset),
                storedBytes: Int(r.storedSize), rawBytes: Int(r.rawSize),
                codec: codec, codecCode: r.codecCode, checksum: r.checksum))
        }
        let dataEnd = tensorCount == 0 ? dataOffset : expectedOffset
        guard dataEnd == footerStart else {
            throw .dataLengthMismatch(declared: dataLength, computed: dataEnd - dataOffset)
        }

        // Name index: a permutation of the records, strictly increasing by name bytes, which
        // makes names unique and lookups a binary search.
        var nameIndex: [Int] = []
        nameIndex.reserveCapacity(Int(tensorCount))
        var seen = [Bool](repeating: false, count: Int(tensorCount))
        var indexCursor = ByteCursor(header, at: indexStart)
        for _ in 0..<Int(tensorCount) {
            let entry = Int(indexCursor.read(UInt32.self)!)
            guard entry < Int(tensorCount) else { throw .invalidNameIndex(reason: "entry \(entry) out of range") }
            guard !seen[entry] else { throw .invalidNameIndex(reason: "record \(entry) listed twice") }
            seen[entry] = true
            if let previous = nameIndex.last {
                let order = compareBytes(tensors[previous].name, tensors[entry].name)
                if order == 0 { throw .duplicateName(tensors[entry].name) }
                if order > 0 { throw .invalidNameIndex(reason: "not sorted by name") }
            }
            nameIndex.append(entry)
        }

        // Metadata: strictly increasing keys, known types, values inside the string table.
        var metadata: [MetadataEntry] = []
        var metaCursor = ByteCursor(header, at: metadataStart)
        for recordNumber in 0..<Int(metadataCount) {
            let r = MetadataRecord.decode(&metaCursor)!
            let key = try decodeString(strings, offset: UInt64(r.keyOffset), length: UInt64(r.keyLength),
                                       what: "key of metadata record \(recordNumber)",
                                       invalid: { .invalidMetadata(key: "#\(recordNumber)", reason: $0) })
            guard !key.isEmpty, key.utf8.count <= WPKFormat.maxNameLength else {
                throw .invalidMetadata(key: key, reason: "key must be 1 to \(WPKFormat.maxNameLength) bytes")
            }
            if sameMinor && r.reserved.contains(where: { $0 != 0 }) {
                throw .reservedFieldNotZero(field: "metadata '\(key)'")
            }
            if let previous = metadata.last, compareBytes(previous.key, key) >= 0 {
                throw .duplicateMetadataKey(key)
            }
            let value: MetadataEntry.Value
            switch r.typeCode {
            case 1:
                // Validated now, turned into a String only when asked for: a tokenizer kept as
                // metadata is most of a model's header.
                let range = try validateString(strings, offset: r.a, length: r.b, what: "value of metadata '\(key)'",
                                               invalid: { .invalidMetadata(key: key, reason: $0) })
                value = .string(fileOffset: WPKFormat.preambleSize + stringsStart + range.lowerBound, length: range.count)
            case 2: value = .int(Int64(bitPattern: r.a))
            case 3: value = .double(Double(bitPattern: r.a))
            case 4:
                guard r.a <= 1 else { throw .invalidMetadata(key: key, reason: "bool value \(r.a) is not 0 or 1") }
                value = .bool(r.a == 1)
            default:
                // Unknown value types from a newer minor version are skipped, not guessed at.
                if sameMinor { throw .invalidMetadata(key: key, reason: "unknown value type \(r.typeCode)") }
                continue
            }
            if r.typeCode != 1 && r.b != 0 && sameMinor {
                throw .reservedFieldNotZero(field: "metadata '\(key)' length")
            }
            metadata.append(MetadataEntry(key: key, value: value))
        }

        return Result(preamble: p, tensors: tensors, nameIndex: nameIndex, metadata: metadata,
                      dataOffset: Int(dataOffset), dataLength: Int(dataLength), headerEnd: headerEnd)
    }

    /// Bounds-checks and validates a string of the table; returns its byte range in `table`.
    private static func validateString(
        _ table: UnsafeRawBufferPointer, offset: UInt64, length: UInt64, what: String,
        invalid: (String) -> WeightStoreError
    ) throws(WeightStoreError) -> Range<Int> {
        let (end, o) = offset.addingReportingOverflow(length)
        guard !o, end <= UInt64(table.count) else { throw .stringOutOfBounds(what: what) }
        let range = Int(offset)..<Int(end)
        switch UTF8Validation.check(UnsafeRawBufferPointer(rebasing: table[range])) {
        case .valid: return range
        case .containsNUL: throw invalid("contains a NUL byte")
        case .invalid: throw invalid("not valid UTF-8")
        }
    }

    private static func decodeString(
        _ table: UnsafeRawBufferPointer, offset: UInt64, length: UInt64, what: String,
        invalid: (String) -> WeightStoreError
    ) throws(WeightStoreError) -> String {
        let range = try validateString(table, offset: offset, length: length, what: what, invalid: invalid)
        return String(decoding: UnsafeRawBufferPointer(rebasing: table[range]), as: UTF8.self)
    }

    private static func startsWithMagic(_ file: UnsafeRawBufferPointer) -> Bool {
        file.count >= 8 && zip(file[0..<8], WPKFormat.magic).allSatisfy { $0 == $1 }
    }

    /// A useful guess at what a non-.wpk file is, for the error message.
    static func sniff(_ file: UnsafeRawBufferPointer) -> String {
        let prefix = Array(file.prefix(64))
        let text = String(decoding: prefix, as: UTF8.self)
        if text.hasPrefix("version https://git-lfs") {
            return "this is a git-LFS pointer file; fetch the real file with 'git lfs pull'"
        }
        if prefix.starts(with: [0x93] + Array("NUMPY".utf8)) { return "this is a .npy file; pack it with 'wpack pack'" }
        if prefix.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return "this is a zip (.npz?) file; pack it with 'wpack pack'" }
        if prefix.count >= 9, prefix[8] == UInt8(ascii: "{") { return "this looks like a .safetensors file; pack it with 'wpack pack'" }
        return "bad magic bytes"
    }
}

/// Byte-wise comparison of UTF-8, the order the name index uses (not Swift's String order,
/// which compares by Unicode canonical equivalence).
func compareBytes(_ a: String, _ b: String) -> Int {
    var ai = a.utf8.makeIterator(), bi = b.utf8.makeIterator()
    while true {
        switch (ai.next(), bi.next()) {
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        case let (x?, y?): if x != y { return x < y ? -1 : 1 }
        }
    }
}

/// A validated metadata record. String values stay as a span of the mapped header until asked
/// for.
struct MetadataEntry: Sendable {
    enum Value: Sendable {
        case string(fileOffset: Int, length: Int)
        case int(Int64)
        case double(Double)
        case bool(Bool)
    }
    let key: String
    let value: Value
}
