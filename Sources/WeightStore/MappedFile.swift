#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

import CSystem

/// A whole file mapped read-only (or, on request, read into memory). The mapping is unmapped
/// when the last reference goes, which is when the last tensor view into it is released (views
/// hold their storage, storage holds this object).
///
/// Pages are shared with every other process mapping the same file, and nothing is read until
/// touched. A mapping sees what happens to its file: if another process truncates it, touching
/// a page past the new end raises SIGBUS; if it rewrites it in place (`cp` over it), the
/// mapping reads the new bytes. Replacing a file by renaming a new one over it (what wpack's
/// own writer does) is always safe: the old inode stays mapped, intact. For files that may be
/// changed in place, a process can
/// - open them with `.readIntoMemory`, which copies the file once and is immune to both;
/// - ask `isUnchanged` (size and modification time of the open inode) after reading, as the
///   wpack tool does before it reports a result;
/// - call `MappedFile.installFaultGuard()`, after which a SIGBUS inside a mapping of this
///   type ends the process with one line naming the file (exit 1) rather than a crash. The
///   tool installs it; a server that cannot stop should prefer `.readIntoMemory`.
public final class MappedFile: @unchecked Sendable {
    public enum Access: Sendable {
        /// Memory-mapped: zero-copy, shared between processes, instant to open.
        case mapped
        /// Read into private memory once: costs the file's size in memory and one read, but
        /// nothing another process does to the file can change or fault what was read.
        case readIntoMemory
    }

    public let path: String
    public let bytes: UnsafeRawBufferPointer
    public let access: Access
    private let descriptor: Int32
    private let identity: (size: Int, modified: timespec, changed: timespec)
    private var guardSlot: Int32 = -1

    /// Makes a SIGBUS inside any mapped file end the process with one error line naming it.
    public static func installFaultGuard() { wpack_fault_install() }

    public init(path: String, access: Access = .mapped) throws(WeightStoreError) {
        self.path = path
        self.access = access
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, message: String(cString: strerror(errno))) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw .io(path: path, message: message)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { close(fd); throw .io(path: path, message: "not a regular file") }
        let size = Int(info.st_size)
        descriptor = fd
        identity = (size, info.st_mtim, info.st_ctim)
        if size == 0 {
            // mmap refuses zero-length mappings; an empty file is simply too small.
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        switch access {
        case .mapped:
            let address = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)
            guard let address, address != MAP_FAILED else {
                let message = String(cString: strerror(errno))
                close(fd)
                throw .io(path: path, message: "mmap failed: \(message)")
            }
            bytes = UnsafeRawBufferPointer(start: address, count: size)
            guardSlot = wpack_fault_register(address, size, path)
        case .readIntoMemory:
            guard size <= MemoryLimit.physicalBytes, let block = BlockAllocation.pages(size) else {
                close(fd)
                throw .io(path: path, message: "cannot read \(size) bytes into memory")
            }
            var done = 0
            while done < size {
                let n = pread(fd, block + done, size - done, off_t(done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    let message = n == 0 ? "the file shrank while it was read" : String(cString: strerror(errno))
                    free(block)
                    close(fd)
                    throw .io(path: path, message: message)
                }
                done += n
            }
            bytes = UnsafeRawBufferPointer(start: block, count: size)
        }
    }

    /// Whether the open file still has the size and modification times it had when opened. A
    /// mapped file changed in place makes its views read other bytes: a result computed from
    /// it is not to be trusted unless this holds after it was computed.
    public var isUnchanged: Bool {
        if access == .readIntoMemory { return true }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return false }
        return Int(info.st_size) == identity.size
            && info.st_mtim.tv_sec == identity.modified.tv_sec && info.st_mtim.tv_nsec == identity.modified.tv_nsec
            && info.st_ctim.tv_sec == identity.changed.tv_sec && info.st_ctim.tv_nsec == identity.changed.tv_nsec
    }

    /// Asks the kernel to map the pages of `range` in one call instead of taking one fault per
    /// page; for a large header (a tokenizer kept as metadata) that is most of the open time.
    /// Advisory: older kernels refuse it and the pages fault in as usual.
    public func prefault(_ range: Range<Int>) {
        guard let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        let end = min(bytes.count, range.upperBound)
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, 22 /* MADV_POPULATE_READ */)
    }

    deinit {
        wpack_fault_unregister(guardSlot)
        if let base = bytes.baseAddress {
            switch access {
            case .mapped: munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
            case .readIntoMemory: free(UnsafeMutableRawPointer(mutating: base))
            }
        }
        close(descriptor)
    }
}

/// Page-aligned blocks for files read into memory, so tensors in them keep the alignment the
/// file gives them.
enum BlockAllocation {
    static func pages(_ size: Int) -> UnsafeMutableRawPointer? {
        var pointer: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&pointer, 4096, size) == 0 else { return nil }
        return pointer
    }
}
