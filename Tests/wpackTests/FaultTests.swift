import Foundation
import Testing

/// What happens to the tool when the world misbehaves: output that cannot be written, a model
/// file truncated or rewritten while it is in use, a kill in the middle of a write, a full
/// disk, paths that are the same file under two names.
@Suite struct FaultTests {
    typealias CLI = CommandLineTests
    static let bert = CLI.repository.appendingPathComponent("Tests/Fixtures/encoders/bert").path

    static func packedBert(in folder: CLI.Folder) throws -> String {
        let model = folder.file("bert.wpk")
        let r = try CLI.wpack("pack", bert, "-o", model)
        #expect(r.status == 0, "\(r.stderr)")
        return model
    }

    /// Runs wpack with stdout sent to `stdout` (a path), returning status and stderr.
    static func run(_ arguments: [String], stdout path: String) throws -> (Int32, Process.TerminationReason, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.executable)
        process.arguments = arguments
        process.standardOutput = FileHandle(forWritingAtPath: path)
        let err = Pipe()
        process.standardError = err
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason, stderr)
    }

    @Test func outputToAFullDeviceIsAnError() throws {
        let folder = CLI.Folder()
        let model = try Self.packedBert(in: folder)
        let (status, _, stderr) = try Self.run(["embed", model, "hello world"], stdout: "/dev/full")
        #expect(status == 1, "\(stderr)")
        #expect(stderr == "wpack: error: cannot write the output: No space left on device\n", "\(stderr)")
    }

    @Test func aClosedPipeEndsQuietly() throws {
        let folder = CLI.Folder()
        let model = try Self.packedBert(in: folder)
        // Far more than a pipe buffer of output, into a reader that stops after 10 bytes.
        let texts = Array(repeating: "a sentence to embed", count: 400)
        let script = "\"$0\" embed \"$1\" \"${@:2}\" | head -c 10 >/dev/null; echo \"${PIPESTATUS[0]}\""
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script, CLI.executable, model] + texts
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let status = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(status.trimmingCharacters(in: .whitespacesAndNewlines) == "141", "status \(status)")
        #expect(stderr.isEmpty, "\(stderr)")
    }

    @Test func anOutputThatIsTheInputUnderAnotherNameIsRefused() throws {
        let folder = CLI.Folder()
        let small = folder.file("small.npz")
        try FileManager.default.copyItem(atPath: CLI.repository.appendingPathComponent("Tests/Fixtures/interchange/stored.npz").path, toPath: small)
        try FileManager.default.createSymbolicLink(atPath: folder.file("link.npz"), withDestinationPath: small)
        let before = try Data(contentsOf: URL(fileURLWithPath: small))
        let r = try CLI.wpack("pack", folder.file("link.npz"), "-o", small)
        #expect(r.status == 1 && r.stderr.contains("is also an input"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: small)) == before)

        let model = try Self.packedBert(in: folder)
        try FileManager.default.createSymbolicLink(atPath: folder.file("alias.safetensors"), withDestinationPath: model)
        let u = try CLI.wpack("unpack", model, "-o", folder.file("alias.safetensors"))
        #expect(u.status == 1 && u.stderr.contains("is the input file"), "\(u.stderr)")
    }

    /// Starts `wpack embed MODEL --file FIFO`: the model is open and loaded while wpack waits
    /// for its texts, so the test can change the file at that moment.
    static func embedWaitingOnFIFO(_ model: String, in folder: CLI.Folder, change: (String) throws -> Void) throws -> (Int32, String, String) {
        // If wpack ends before reading, writing the FIFO must not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        let fifo = folder.file("texts.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.executable)
        process.arguments = ["embed", model, "--file", fifo]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Opening the FIFO for writing waits until wpack opens it for reading, which it does
        // after loading the model.
        let writer = open(fifo, O_WRONLY)
        try change(model)
        _ = "hello world\nanother text\n".withCString { write(writer, $0, strlen($0)) }
        close(writer)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    @Test func aModelTruncatedUnderARunningEmbedIsOneErrorLine() throws {
        let folder = CLI.Folder()
        let model = try Self.packedBert(in: folder)
        let (status, stdout, stderr) = try Self.embedWaitingOnFIFO(model, in: folder) { path in
            #expect(truncate(path, 4096) == 0)
        }
        #expect(status == 1, "\(stderr)")
        #expect(stdout.isEmpty)
        #expect(stderr.hasPrefix("wpack: error: \(model): ") && stderr.split(separator: "\n").count == 1, "\(stderr)")
    }

    @Test func aModelRewrittenInPlaceUnderARunningEmbedIsAnError() throws {
        let folder = CLI.Folder()
        let model = try Self.packedBert(in: folder)
        let size = try FileManager.default.attributesOfItem(atPath: model)[.size] as! Int
        let (status, stdout, stderr) = try Self.embedWaitingOnFIFO(model, in: folder) { path in
            // What `cp other.wpk model.wpk` does to a file of the same size: same inode, new bytes.
            let fd = open(path, O_WRONLY)
            let zeros = [UInt8](repeating: 0, count: size / 2)
            _ = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(size / 4)) }
            close(fd)
        }
        #expect(status == 1, "\(stderr)")
        #expect(stdout.isEmpty, "vectors were printed from a changed file")
        #expect(stderr.contains("changed in place"), "\(stderr)")
    }

    @Test func killingPackLeavesTheOldTargetAndNoTemporary() throws {
        let folder = CLI.Folder()
        let target = folder.file("out.wpk")
        // 32 MiB of input that compresses slowly, so a pack takes long enough to be killed in
        // the middle of writing.
        let count = 8 << 20
        let big = folder.file("big.npy")
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (\(count),), }".utf8)
        header += [UInt8](repeating: 0x20, count: (64 - (10 + header.count + 1) % 64) % 64) + [0x0A]
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + header)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var values = [UInt32](repeating: 0, count: count)
        for i in 0..<count { state = state &* 6364136223846793005 &+ 1442695040888963407; values[i] = UInt32(truncatingIfNeeded: state >> 33) }
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        try data.write(to: URL(fileURLWithPath: big))
        #expect(try CLI.wpack("pack", CLI.digits, "-o", target).status == 0)
        let old = try Data(contentsOf: URL(fileURLWithPath: target))
        var killedMidway = 0
        for attempt in 0..<12 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CLI.executable)
            process.arguments = ["pack", big, "-o", target, "--compress", "zstd"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(useconds_t(10_000 + attempt * 20_000))
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            let deadline = Date().addingTimeInterval(60)
            while process.isRunning && Date() < deadline { usleep(5_000) }
            #expect(!process.isRunning, "attempt \(attempt): pack did not end")
            if process.isRunning { kill(process.processIdentifier, SIGKILL); continue }
            let now = try Data(contentsOf: URL(fileURLWithPath: target))
            if now == old {
                if process.terminationReason == .uncaughtSignal { killedMidway += 1 }
            } else {
                // Killed after its rename, or not killed: then the target is the whole new file.
                let check = try CLI.wpack("verify", target)
                #expect(check.status == 0 && now.count > data.count / 2, "attempt \(attempt): the target is neither the old file nor a complete new one: \(check.stderr)")
                try old.write(to: URL(fileURLWithPath: target))
            }
            #expect(folder.contents == ["big.npy", "out.wpk"], "attempt \(attempt): \(folder.contents)")
        }
        #expect(killedMidway > 0, "no pack was killed while it was writing")
    }

    /// Sanitizer runtimes write their own files and shadow maps, which a file size limit breaks.
    @Test(.disabled(if: ProcessInfo.processInfo.environment["WPACK_SANITIZER"] != nil, "a file size limit breaks the sanitizer runtime"))
    func aFullDiskDuringPackLeavesNothing() throws {
        let folder = CLI.Folder()
        // A file size limit stands in for a full disk: writes past it fail with EFBIG.
        let script = "ulimit -f 64; trap '' XFSZ; exec \"$0\" pack \"$1\" -o \"$2\""
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script, CLI.executable, Self.bert, folder.file("m.wpk")]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1, "\(stderr)")
        #expect(stderr.hasPrefix("wpack: error: ") && stderr.contains("File too large"), "\(stderr)")
        #expect(folder.contents.isEmpty, "\(folder.contents)")
    }

    @Test func usageErrorsAreOneLine() throws {
        for args in [["embed", "--bogus"], ["pack"], ["frobnicate"], ["bench", "ops", "--repeats", "x"]] {
            let r = try CLI.wpack(args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("--help"), "\(args): \(r.stderr)")
        }
    }

    @Test func inspectEscapesNamesAndValuesFromTheFile() throws {
        let folder = CLI.Folder()
        let json = "{\"__metadata__\":{\"note\":\"a\\u001b[2Jb\"},\"x\\u001b[31m\\ny\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { bytes += $0 }
        bytes += Array(json.utf8) + [0, 0, 0x80, 0x3F]
        try Data(bytes).write(to: URL(fileURLWithPath: folder.file("e.safetensors")))
        #expect(try CLI.wpack("pack", folder.file("e.safetensors"), "-o", folder.file("e.wpk")).status == 0)
        let r = try CLI.wpack("inspect", folder.file("e.wpk"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.unicodeScalars.contains { $0.value == 0x1B }, "raw escape reached the terminal")
        #expect(r.stdout.contains("x\\u{1B}[31m\\ny"), "\(r.stdout)")
        #expect(r.stdout.contains("note = a\\u{1B}[2Jb"), "\(r.stdout)")
    }
}
