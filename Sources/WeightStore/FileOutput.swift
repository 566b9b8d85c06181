#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A new file written through a 1 MiB buffer, created beside its final path under a temporary
/// name and renamed over it only after everything is written and fsynced. Until `commit()`
/// succeeds the target is untouched; `abandon()` (or deinit) removes the temporary.
///
/// Shared by the .wpk writer and the interchange writers (`unpack`), so no command can leave a
/// half-written output.
public final class FileOutput {
    public let targetPath: String
    public let temporaryPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferSize = 1 << 20
    public private(set) var position: UInt64 = 0
    private var finished = false

    public init(path: String) throws {
        targetPath = path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !base.isEmpty else { throw WeightStoreError.io(path: path, message: "output path names a folder, not a file") }
        var random = SystemRandomNumberGenerator()
        temporaryPath = "\(directory.isEmpty ? "" : directory + "/").\(base).tmp-\(getpid())-\(random.next() % 1_000_000_000)"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WeightStoreError.io(path: path, message: "cannot create a file in '\(directory)': \(String(cString: strerror(errno)))")
        }
        buffer.reserveCapacity(bufferSize)
    }

    deinit { abandon() }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        if buffer.count + bytes.count > bufferSize { try flush() }
        if bytes.count >= bufferSize {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
        position += UInt64(bytes.count)
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { (raw) throws in try write(raw) }
    }

    public func writeZeros(_ count: Int) throws {
        var left = count
        let zeros = [UInt8](repeating: 0, count: min(count, 1 << 16))
        while left > 0 {
            let n = min(left, zeros.count)
            try zeros.withUnsafeBytes { (raw) throws in
                try write(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
            }
            left -= n
        }
    }

    /// Overwrites bytes already written (the writer back-patches its header this way).
    public func patch(_ bytes: [UInt8], at offset: UInt64) throws {
        try flush()
        try bytes.withUnsafeBytes { (raw) throws in
            var done = 0
            while done < raw.count {
                let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset) + off_t(done))
                if n < 0 { if errno == EINTR { continue }; throw failure("write") }
                done += n
            }
        }
    }

    /// Flushes, fsyncs, renames over the target and fsyncs the folder.
    public func commit() throws {
        try flush()
        guard fsync(fd) == 0 else { throw failure("fsync") }
        guard close(fd) == 0 else { fd = -1; throw failure("close") }
        fd = -1
        guard rename(temporaryPath, targetPath) == 0 else { throw failure("rename") }
        finished = true
        let slash = targetPath.lastIndex(of: "/")
        let directory = slash.map { String(targetPath[..<$0]) } ?? "."
        let dfd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Removes the temporary file; the target is left as it was.
    public func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        if !finished { unlink(temporaryPath); finished = true }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { (raw) throws in try writeAll(raw) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ raw: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 { if errno == EINTR { continue }; throw failure("write") }
            done += n
        }
    }

    private func failure(_ what: String) -> WeightStoreError {
        .io(path: targetPath, message: "\(what) failed: \(String(cString: strerror(errno)))")
    }
}
