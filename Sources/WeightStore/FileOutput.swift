#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSystem

/// A new file written through a 1 MiB buffer and put in place only after everything is
/// written and fsynced. Until `commit()` succeeds the target is untouched; `abandon()` (or
/// deinit) discards what was written.
///
/// On Linux the data goes to an unnamed file (O_TMPFILE) in the target's folder: a process
/// killed mid-write leaves no name behind, only space the kernel frees with the descriptor.
/// At commit it gets a temporary name (for the instant before the rename) and is renamed over
/// the target. Where a file system has no O_TMPFILE the data goes to a named temporary,
/// `.NAME.wpack-tmp-PID-N`; every new output sweeps such temporaries of dead processes from
/// its folder, so a kill there costs space only until the next write.
///
/// Shared by the .wpk writer and the interchange writers (`unpack`), so no command can leave a
/// half-written output.
public final class FileOutput {
    public let targetPath: String
    /// Where the bytes are while being written: `/proc/self/fd/N` for an unnamed file, else the
    /// named temporary. Readable, so a caller can check the result before it is committed.
    public private(set) var temporaryPath: String
    private let directory: String
    private let base: String
    /// Whether `temporaryPath` is a name in the folder: false for an unnamed file until commit
    /// links it (then true), and what abandon() unlinks.
    private var hasName: Bool
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferSize = 1 << 20
    public private(set) var position: UInt64 = 0
    private var finished = false

    static let temporaryMarker = ".wpack-tmp-"

    public init(path: String) throws {
        targetPath = path
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        directory = folder.isEmpty ? "/" : folder
        base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !base.isEmpty else { throw WeightStoreError.io(path: path, message: "output path names a folder, not a file") }
        var isFolder = stat()
        if stat(path, &isFolder) == 0, (isFolder.st_mode & S_IFMT) == S_IFDIR {
            throw WeightStoreError.io(path: path, message: "output path is a folder")
        }
        FileOutput.sweepStaleTemporaries(in: directory)
        let anonymous = wpack_open_unnamed(directory)
        if anonymous >= 0 {
            fd = anonymous
            hasName = false
            temporaryPath = "/proc/self/fd/\(anonymous)"
        } else {
            hasName = true
            temporaryPath = FileOutput.temporaryName(directory: directory, base: base)
            fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw WeightStoreError.io(path: path, message: "cannot create a file in '\(directory)': \(String(cString: strerror(errno)))")
            }
        }
        buffer.reserveCapacity(bufferSize)
    }

    private static func temporaryName(directory: String, base: String) -> String {
        var random = SystemRandomNumberGenerator()
        return "\(directory)/.\(base)\(temporaryMarker)\(getpid())-\(random.next() % 1_000_000_000)"
    }

    /// Removes `.NAME.wpack-tmp-PID-N` files whose process no longer exists.
    static func sweepStaleTemporaries(in directory: String) {
        guard let dir = opendir(directory) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.hasPrefix("."), let marker = name.range(of: temporaryMarker) else { continue }
            let tail = name[marker.upperBound...].split(separator: "-")
            guard tail.count == 2, let pid = Int32(tail[0]), Int(tail[1]) != nil, pid > 0 else { continue }
            if kill(pid, 0) == -1 && errno == ESRCH { unlink(directory + "/" + name) }
        }
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

    /// Flushes and fsyncs everything written, so `temporaryPath` can be read back in full.
    public func sync() throws {
        try flush()
        guard fsync(fd) == 0 else { throw failure("fsync") }
    }

    /// Flushes, fsyncs, renames over the target and fsyncs the folder.
    public func commit() throws {
        try sync()
        if !hasName {
            // The unnamed file gets a name only now; a kill in the instant before the rename
            // leaves a temporary the next writer in this folder sweeps.
            let named = FileOutput.temporaryName(directory: directory, base: base)
            guard linkat(AT_FDCWD, temporaryPath, AT_FDCWD, named, AT_SYMLINK_FOLLOW) == 0 else { throw failure("link") }
            temporaryPath = named
            hasName = true
        }
        guard close(fd) == 0 else { fd = -1; throw failure("close") }
        fd = -1
        guard rename(temporaryPath, targetPath) == 0 else { throw failure("rename") }
        finished = true
        let dfd = open(directory, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Discards what was written; the target is left as it was.
    public func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        if !finished {
            if hasName { unlink(temporaryPath) }
            finished = true
        }
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
