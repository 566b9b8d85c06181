#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps recently freed large heap blocks for reuse.
///
/// A fresh multi-megabyte block costs more to use than to compute into: the kernel zeroes every
/// page on first touch (measured: a fused chain over 16M floats spent most of its time in
/// clear_page). Inference allocates the same sizes again and again (each layer, each batch), so
/// blocks of at least 64 KiB are kept, by exact size, up to a bounded total, and handed out
/// again with their pages already mapped. Small blocks go straight to malloc, which already
/// reuses them well.
enum BlockPool {
    static let minimumSize = 64 << 10
    /// The most memory the pool keeps unused.
    static let capacity = 512 << 20

    private struct State {
        var blocks: [Int: [UInt]] = [:]  // addresses: plain integers cross the lock freely
        var cached = 0
    }

    private static let state = Locked(State())

    /// Size class of a request: whole pages, so near sizes share blocks. nil when rounding up
    /// would overflow (a request that no allocator could satisfy anyway).
    static func sizeClass(_ bytes: Int) -> Int? {
        let (rounded, overflow) = bytes.addingReportingOverflow(4095)
        return overflow ? nil : rounded & ~4095
    }

    /// A block of at least `byteCount` bytes, or nil when the system refuses it. Blocks come
    /// from posix_memalign and go back to free, so failure is an answer rather than a trap.
    static func allocate(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer? {
        guard byteCount >= minimumSize else {
            return systemAllocate(Swift.max(byteCount, alignment), alignment: alignment)
        }
        guard let size = sizeClass(byteCount) else { return nil }
        if let reused = state.withLock({ s -> UInt? in
            guard let p = s.blocks[size]?.popLast() else { return nil }
            s.cached -= size
            return p
        }), let pointer = UnsafeMutableRawPointer(bitPattern: reused) {
            return pointer
        }
        return systemAllocate(size, alignment: Swift.max(alignment, 4096))
    }

    static func release(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        guard byteCount >= minimumSize, let size = sizeClass(byteCount) else { free(pointer); return }
        let address = UInt(bitPattern: pointer)
        let kept = state.withLock { s -> Bool in
            guard s.cached + size <= capacity else { return false }
            s.blocks[size, default: []].append(address)
            s.cached += size
            return true
        }
        if !kept { free(pointer) }
    }

    private static func systemAllocate(_ size: Int, alignment: Int) -> UnsafeMutableRawPointer? {
        var pointer: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&pointer, alignment, size) == 0 else { return nil }
        return pointer
    }

    /// Returns every cached block to the system (for tests and long-idle servers).
    static func drain() {
        let addresses = state.withLock { s -> [UInt] in
            let all = Array(s.blocks.values.joined())
            s.blocks = [:]
            s.cached = 0
            return all
        }
        for a in addresses { free(UnsafeMutableRawPointer(bitPattern: a)) }
    }
}
