import Foundation
import LazyTensor

/// A .wpk file, memory-mapped and validated.
///
/// Opening reads the preamble, header and footer only; tensor data is never touched until asked
/// for, so opening a 1 GiB store costs the same as opening a 1 MiB one. Uncompressed float32
/// tensors are zero-copy views into the mapping; everything else is decoded once and cached.
public final class WeightStore: Sendable {
    /// When tensor checksums are checked.
    public enum VerifyMode: Sendable {
        /// Never on access (the default, and the zero-cost path); `verify()` still checks all.
        case none
        /// The first access of each tensor checks its checksum.
        case onFirstTouch
        /// Every checksum and all padding are checked while opening.
        case eager
    }

    public let path: String
    public let file: MappedFile
    /// The whole mapping as one storage, so every mapped view shares it (and keeps it mapped).
    private let storage: Storage
    public let infos: [TensorInfo]
    private let nameIndex: [Int]
    private let metadataEntries: [MetadataEntry]
    public let alignment: Int
    public let version: (major: Int, minor: Int)
    public let verifyMode: VerifyMode
    private let dataOffset: Int
    private let headerEnd: Int

    private let decoded = Locked<[Int: Storage]>([:])
    /// Coded weights' storages (codedTensor), one per tensor so that views share it.
    private let coded = Locked<[Int: Storage]>([:])
    private let verified = Locked<Set<Int>>([])

    public convenience init(contentsOf url: URL, verify: VerifyMode = .none,
                            access: MappedFile.Access = .mapped) throws(WeightStoreError) {
        try self.init(path: url.path, verify: verify, access: access)
    }

    /// `access: .readIntoMemory` copies the file once instead of mapping it: for a server whose
    /// files may be rewritten in place under it (see `MappedFile`).
    public init(path: String, verify: VerifyMode = .none, access: MappedFile.Access = .mapped) throws(WeightStoreError) {
        self.path = path
        file = try MappedFile(path: path, access: access)
        if file.bytes.count >= WPKFormat.preambleSize + WPKFormat.footerSize {
            // Header length is not trusted yet: the range is clipped to the file.
            let length = Int(clamping: UInt64(littleEndian: file.bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
            file.prefault(0..<WPKFormat.preambleSize &+ min(length, file.bytes.count))
        }
        let header = try HeaderDecoder.decode(file.bytes)
        storage = Storage(mapping: file.bytes.baseAddress!, byteCount: file.bytes.count, owner: file)
        infos = header.tensors
        nameIndex = header.nameIndex
        metadataEntries = header.metadata
        alignment = Int(header.preamble.alignment)
        version = (Int(header.preamble.major), Int(header.preamble.minor))
        verifyMode = verify
        dataOffset = header.dataOffset
        headerEnd = header.headerEnd
        if verify == .eager { try self.verify() }
    }

    public var tensorNames: [String] { infos.map(\.name) }

    /// Throws when the file was changed in place since it was opened (its size or modification
    /// time differ): whatever was computed from its views may have read other bytes. Files
    /// replaced by a rename never trip this; their old contents stay mapped.
    public func checkUnchanged() throws(WeightStoreError) {
        guard file.isUnchanged else { throw .fileChanged(path: path) }
    }

    /// Metadata values rendered as strings (typed values keep their type in `typedMetadata`).
    public var metadata: [String: String] {
        Dictionary(typedMetadata.map { ($0.key, $0.value.description) }, uniquingKeysWith: { a, _ in a })
    }

    /// Metadata in key order, with its stored types.
    public var typedMetadata: [(key: String, value: MetadataValue)] {
        metadataEntries.map { ($0.key, value(of: $0)) }
    }

    public var metadataKeys: [String] { metadataEntries.map(\.key) }

    public func metadataValue(_ key: String) -> MetadataValue? {
        binarySearch(count: metadataEntries.count, key: key) { metadataEntries[$0].key }.map { value(of: metadataEntries[$0]) }
    }

    private func value(of entry: MetadataEntry) -> MetadataValue {
        switch entry.value {
        case let .string(offset, length):
            // Validated as UTF-8 when the store was opened.
            .string(String(decoding: UnsafeRawBufferPointer(rebasing: file.bytes[offset..<offset + length]), as: UTF8.self))
        case let .int(i): .int(i)
        case let .double(d): .double(d)
        case let .bool(b): .bool(b)
        }
    }

    public func info(_ name: String) -> TensorInfo? { recordNumber(of: name).map { infos[$0] } }

    /// A weight as a matrix product reads it: a tensor stored as float16, bfloat16, q8_0, q4_0
    /// or q4_1 is a zero-copy view of its stored bytes in that dtype (decompressed once, counted,
    /// if zstd), which matmul and Linear read as they are and any other op widens, counted.
    /// Every other tensor is exactly `tensor(_:)`.
    public func codedTensor(_ name: String) throws(WeightStoreError) -> Tensor {
        guard let number = recordNumber(of: name) else { throw .tensorNotFound(name) }
        let info = infos[number]
        guard let dtype = info.dtype, dtype.isCodedWeight, let codec = info.codec else { return try tensor(name) }
        if let cached = coded.withLock({ $0[number] }) { return Tensor(storage: cached, shape: info.shape, dtype: dtype) }
        let block: Storage
        if codec == .zstd {
            block = try decompress(number)
        } else {
            if verifyMode == .onFirstTouch { try verifyOnce(number) }
            // Its own storage over the tensor's bytes: a block type's elements are not a whole
            // number of bytes, so they cannot be counted from the file's first byte.
            block = Storage(mapping: file.bytes.baseAddress! + info.offset, byteCount: info.storedBytes, owner: file)
        }
        let winner = coded.withLock { cache -> Storage in
            if let existing = cache[number] { return existing }
            cache[number] = block
            return block
        }
        return Tensor(storage: winner, shape: info.shape, dtype: dtype)
    }

    /// The tensor: a float32 view for float types, an int32 / int64 one for indices. Zero-copy
    /// for uncompressed float32, int32 and int64; other float types (the halves and the block
    /// types too: see `codedTensor` for those kept as stored) and compressed tensors are
    /// decoded once (a counted copy, reason `.decode`) and cached. Other integer types and
    /// bool are refused (`notFloatingPoint`); `withRawBytes` reads them.
    public func tensor(_ name: String) throws(WeightStoreError) -> Tensor {
        guard let number = recordNumber(of: name) else { throw .tensorNotFound(name) }
        let info = infos[number]
        guard let dtype = info.dtype, dtype.isFloatingPoint || dtype == .int32 || dtype == .int64 else {
            throw .notFloatingPoint(name: name, dtype: info.dtype?.name ?? "dtype code \(info.dtypeCode)")
        }
        // A codec from a newer minor version: listed, never read (its stored bytes are not the
        // raw bytes, whatever their size).
        guard info.codec != nil else { throw .unknownCodec(name: name, code: info.codecCode) }
        if dtype == .int32 || dtype == .int64 {
            // Indices are used as stored: a view of the mapping, or of the decompressed block.
            if info.codec == Codec.none && info.offset % dtype.byteSize == 0 {
                if verifyMode == .onFirstTouch { try verifyOnce(number) }
                return Tensor(storage: storage, offset: info.offset / dtype.byteSize, shape: info.shape, dtype: dtype)
            }
            if let cached = decoded.withLock({ $0[number] }) { return Tensor(storage: cached, shape: info.shape, dtype: dtype) }
            let block: Storage
            if info.codec == .zstd { block = try decompress(number) } else {
                if verifyMode == .onFirstTouch { try verifyOnce(number) }
                block = try allocateForDecoding(info.name, bytes: info.rawBytes)
                let raw = stored(number)
                if let source = raw.baseAddress { block.baseAddress.copyMemory(from: source, byteCount: info.rawBytes) }
                Stats.recordCopy(bytes: info.rawBytes, reason: .decode)
            }
            let winner = decoded.withLock { cache -> Storage in
                if let existing = cache[number] { return existing }
                cache[number] = block
                return block
            }
            return Tensor(storage: winner, shape: info.shape, dtype: dtype)
        }
        if info.isMappable {
            if verifyMode == .onFirstTouch { try verifyOnce(number) }
            return Tensor(storage: storage, offset: info.offset / MemoryLayout<Float>.stride, shape: info.shape)
        }
        if let cached = decoded.withLock({ $0[number] }) { return Tensor(storage: cached, shape: info.shape) }
        let floats = try decodeToFloat32(number)
        // Two threads may decode the same tensor at once; the first to finish wins, so every
        // caller sees one storage.
        let winner = decoded.withLock { cache -> Storage in
            if let existing = cache[number] { return existing }
            cache[number] = floats
            return floats
        }
        return Tensor(storage: winner, shape: info.shape)
    }

    /// Calls `body` with the tensor's raw bytes as stored before compression (in its own dtype).
    /// Uncompressed tensors are read in place; compressed ones are decoded into a temporary.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let number = recordNumber(of: name) else { throw WeightStoreError.tensorNotFound(name) }
        let info = infos[number]
        switch info.codec {
        case .none?:
            if verifyMode == .onFirstTouch { try verifyOnce(number) }
            return try withExtendedLifetime(file) { try body(stored(number)) }
        case .zstd?:
            let raw = try decompress(number)
            return try withExtendedLifetime(raw) {
                try body(UnsafeRawBufferPointer(start: raw.baseAddress, count: raw.byteCount))
            }
        case nil:
            throw WeightStoreError.unknownCodec(name: name, code: info.codecCode)
        }
    }

    /// Checks every tensor's checksum (decoding compressed ones) and that all padding is zero.
    /// Throws naming the first bad tensor in file order.
    public func verify() throws(WeightStoreError) {
        var position = headerEnd
        for number in infos.indices {
            let info = infos[number]
            try checkPadding(from: position, to: info.offset)
            position = info.offset + info.storedBytes
            switch info.codec {
            case .none?:
                guard Checksum.xxh3(stored(number)) == info.checksum else { throw .checksumMismatch(name: info.name) }
            case .zstd?:
                // Streamed through the hash in chunks: verify's memory does not grow with the
                // tensor, and a frame that decodes to more than its record stops at the record.
                let hash = Checksum.Stream()
                if let message = Zstd.decompressStreaming(stored(number), rawSize: info.rawBytes, consume: hash.update) {
                    throw .decompressionFailed(name: info.name, message: message)
                }
                guard hash.digest == info.checksum else { throw .checksumMismatch(name: info.name) }
            case nil:
                throw .unknownCodec(name: info.name, code: info.codecCode)
            }
        }
        verified.withLock { $0.formUnion(infos.indices) }
    }

    // MARK: internals

    private func recordNumber(of name: String) -> Int? {
        binarySearch(count: nameIndex.count, key: name) { infos[nameIndex[$0]].name }.map { nameIndex[$0] }
    }

    private func binarySearch(count: Int, key: String, keyAt: (Int) -> String) -> Int? {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            let order = compareBytes(keyAt(mid), key)
            if order == 0 { return mid }
            if order < 0 { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    private func stored(_ number: Int) -> UnsafeRawBufferPointer {
        let info = infos[number]
        return UnsafeRawBufferPointer(rebasing: file.bytes[info.offset..<info.offset + info.storedBytes])
    }

    private func checkPadding(from start: Int, to end: Int) throws(WeightStoreError) {
        guard start < end else { return }
        let bytes = file.bytes
        for position in start..<end where bytes[position] != 0 { throw .nonZeroPadding(offset: UInt64(position)) }
    }

    private func verifyOnce(_ number: Int) throws(WeightStoreError) {
        if verified.withLock({ $0.contains(number) }) { return }
        guard Checksum.xxh3(stored(number)) == infos[number].checksum else {
            throw .checksumMismatch(name: infos[number].name)
        }
        verified.withLock { _ = $0.insert(number) }
    }

    /// Decodes a compressed tensor into a fresh 64-byte-aligned block, checked against its raw
    /// size and checksum. The block is counted as allocated and its bytes as copied (decode).
    private func decompress(_ number: Int) throws(WeightStoreError) -> Storage {
        let info = infos[number]
        if let message = Zstd.check(stored(number), rawSize: info.rawBytes) {
            throw .decompressionFailed(name: info.name, message: message)
        }
        let block = try allocateForDecoding(info.name, bytes: info.rawBytes)
        let destination = UnsafeMutableRawBufferPointer(start: block.baseAddress, count: info.rawBytes)
        if let message = Zstd.decompress(stored(number), into: destination) {
            throw .decompressionFailed(name: info.name, message: message)
        }
        guard Checksum.xxh3(UnsafeRawBufferPointer(destination)) == info.checksum else {
            throw .checksumMismatch(name: info.name)
        }
        Stats.recordCopy(bytes: info.rawBytes, reason: .decode)
        return block
    }

    /// A block for decoded data, whose size comes from the file: refused with an error, not a
    /// trap, when it exceeds the machine's memory or the system will not give it.
    private func allocateForDecoding(_ name: String, bytes: Int) throws(WeightStoreError) -> Storage {
        let limit = MemoryLimit.physicalBytes
        guard bytes <= limit, let block = Storage(tryAllocatingByteCount: bytes) else {
            throw .decodedTooLarge(name: name, bytes: bytes, limit: limit)
        }
        return block
    }

    /// Float32 storage for a non-mappable float tensor: decompressed, then widened if needed.
    private func decodeToFloat32(_ number: Int) throws(WeightStoreError) -> Storage {
        let info = infos[number]
        var raw: UnsafeRawBufferPointer
        var keepAlive: Storage? = nil
        if info.codec == .zstd {
            let block = try decompress(number)
            if info.dtype == .float32 { return block }
            keepAlive = block
            raw = UnsafeRawBufferPointer(start: block.baseAddress, count: info.rawBytes)
        } else {
            if verifyMode == .onFirstTouch { try verifyOnce(number) }
            raw = stored(number)
        }
        let count = info.elementCount
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        let out = try allocateForDecoding(info.name, bytes: overflow ? .max : bytes)
        let dst = out.baseAddress.assumingMemoryBound(to: Float.self)
        withExtendedLifetime((keepAlive, file)) {
            Widening.toFloat32(raw, dtype: info.dtype!, count: count, into: dst)
        }
        Stats.recordCopy(bytes: count * MemoryLayout<Float>.stride, reason: .decode)
        return out
    }
}
