#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes behind one or more tensor views: either an owned, 64-byte-aligned heap block or a
/// region of a memory-mapped file.
///
/// Storage is a reference type so that views can share it and `sharesStorage(with:)` can be
/// proved by identity. A mapped storage holds its `owner` (the mapping) strongly: the file stays
/// mapped for as long as any view of it exists.
public final class Storage: @unchecked Sendable {
    public enum Kind: Sendable, Equatable { case heap, mapped }

    public let kind: Kind
    /// First byte. Mapped storage is read-only memory: never write through it.
    public let baseAddress: UnsafeMutableRawPointer
    public let byteCount: Int
    private let owner: AnyObject?
    private let scope: Stats.Collector?

    /// Alignment of every heap block: a cache line, and enough for any SIMD load.
    public static let alignment = 64

    /// Allocates an uninitialised, 64-byte-aligned block and counts it as allocated. The engine
    /// sizes these from shapes it has already checked; a request the system cannot meet stops
    /// the process with the size in the message. Readers of untrusted sizes use the failable
    /// `init(tryAllocatingByteCount:)` instead.
    public init(allocatingByteCount byteCount: Int) {
        guard let base = Storage.heapBlock(byteCount) else {
            fatalError("wpack: out of memory: cannot allocate \(byteCount) bytes")
        }
        kind = .heap
        baseAddress = base
        self.byteCount = byteCount
        owner = nil
        scope = Stats.recordAllocation(bytes: byteCount)
    }

    /// Allocates as above, or returns nil when the system refuses the block (or the size is
    /// negative or too large to round), so a reader can turn that into an error.
    public init?(tryAllocatingByteCount byteCount: Int) {
        guard let base = Storage.heapBlock(byteCount) else { return nil }
        kind = .heap
        baseAddress = base
        self.byteCount = byteCount
        owner = nil
        scope = Stats.recordAllocation(bytes: byteCount)
    }

    private static func heapBlock(_ byteCount: Int) -> UnsafeMutableRawPointer? {
        // A zero-byte request still gets a real, unique block so identity stays meaningful.
        guard byteCount >= 0 else { return nil }
        return BlockPool.allocate(byteCount: byteCount, alignment: alignment)
    }

    /// Wraps memory owned by someone else (a file mapping); nothing is allocated or copied.
    public init(mapping baseAddress: UnsafeRawPointer, byteCount: Int, owner: AnyObject) {
        kind = .mapped
        self.baseAddress = UnsafeMutableRawPointer(mutating: baseAddress)
        self.byteCount = byteCount
        self.owner = owner
        scope = nil
    }

    deinit {
        if kind == .heap {
            BlockPool.release(baseAddress, byteCount: byteCount)
            Stats.recordRelease(bytes: byteCount, scope: scope)
        }
    }
}
