/// Bounds-checked little-endian reads from untrusted bytes. Every read checks the remaining
/// length first, so a malformed file can only produce an error, never an out-of-bounds access.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int

    init(_ bytes: UnsafeRawBufferPointer, at position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    var remaining: Int { bytes.count - position }

    /// Reads a fixed-width integer, or nil when fewer bytes than its width remain.
    mutating func read<T: FixedWidthInteger>(_: T.Type) -> T? {
        let width = MemoryLayout<T>.size
        guard position >= 0, remaining >= width else { return nil }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
        position += width
        return value
    }

    mutating func readBytes(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, remaining >= count else { return nil }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
    }

    mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, remaining >= count else { return false }
        position += count
        return true
    }
}

/// Little-endian serialisation into a growing byte array (headers are small: kilobytes).
struct ByteSink {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ raw: some Collection<UInt8>) { bytes.append(contentsOf: raw) }

    mutating func writeZeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }

    var count: Int { bytes.count }
}

/// Rounds `value` up to a multiple of `alignment` (a power of two), or nil on overflow.
@inline(__always)
func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64? {
    let (sum, overflow) = value.addingReportingOverflow(alignment - 1)
    return overflow ? nil : sum & ~(alignment - 1)
}
