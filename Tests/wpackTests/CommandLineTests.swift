import Foundation
import Testing

/// The `wpack` executable, run as a user runs it: exit codes, one-line errors, no partial files.
@Suite struct CommandLineTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let digits = repository.appendingPathComponent("Tests/Fixtures/digits-cnn/digits_cnn.safetensors").path

    static var executable: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("wpack").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return repository.appendingPathComponent(".build/debug/wpack").path
    }

    struct Result { let status: Int32; let stdout: String; let stderr: String }

    static func wpack(_ arguments: String...) throws -> Result { try wpack(arguments) }

    static func wpack(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    final class Folder {
        let path = NSTemporaryDirectory() + "wpack-cli-" + UUID().uuidString
        init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func file(_ name: String) -> String { path + "/" + name }
        var contents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path))?.sorted() ?? [] }
    }

    /// `pack --weights`: the summary names what was converted and its error, inspect shows each
    /// tensor's coding and error, verify and run accept the result; bad values and patterns
    /// that match nothing are one-line errors that leave no file.
    @Test func packWithCodedWeights() throws {
        let folder = Folder()
        let out = folder.file("q.wpk")
        let layers = Self.repository.appendingPathComponent("Tests/Fixtures/digits-cnn/layers.json").path
        let pack = try Self.wpack("pack", Self.digits, "--layers", layers, "-o", out, "--weights", "q8", "--keep", "fc2.*")
        #expect(pack.status == 0, "\(pack.stderr)")
        #expect(pack.stdout.contains("1 tensors converted, 1 as q8_0") && pack.stdout.contains("relative RMS error"), "\(pack.stdout)")
        let inspect = try Self.wpack("inspect", out, "--json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
        #expect(json["version"] as? String == "1.1")
        let tensors = try #require(json["tensors"] as? [[String: Any]])
        let fc1 = try #require(tensors.first { $0["name"] as? String == "fc1.weight" })
        #expect(fc1["dtype"] as? String == "q8_0" && (fc1["conversion"] as? String)?.hasPrefix("q8_0 from float32: max abs error") == true)
        #expect(tensors.first { $0["name"] as? String == "fc2.weight" }?["dtype"] as? String == "float32")
        let human = try Self.wpack("inspect", out).stdout
        #expect(human.contains("q8_0") && human.contains("relative RMS") && !human.contains("wpack.conversion:"), "\(human)")
        #expect(try Self.wpack("verify", out).status == 0)
        for bad in [["--weights", "q3"], ["--weights", "q8", "--convert", "nothing.*"], ["--keep", "fc1.*"],
                    ["--weights", "q4", "--convert", "fc2.bias"], ["--weights", "q8", "--max-error", "-1"]] {
            let missing = folder.file("bad.wpk")
            let r = try Self.wpack(["pack", Self.digits, "-o", missing] + bad)
            #expect(r.status != 0 && r.stderr.split(separator: "\n").count == 1 && !FileManager.default.fileExists(atPath: missing),
                    "\(bad): \(r.stderr)")
        }
    }

    @Test func packGGUF() throws {
        let folder = Folder()
        let out = folder.file("g.wpk")
        let gguf = Self.repository.appendingPathComponent("Tests/Fixtures/gguf/tiny.gguf").path
        let pack = try Self.wpack("pack", gguf, "-o", out)
        #expect(pack.status == 0, "\(pack.stderr)")
        #expect(pack.stdout.contains("9 tensors") && pack.stdout.contains("1 Q6_K tensor widened to float32"), "\(pack.stdout)")
        let inspect = try Self.wpack("inspect", out, "--json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
        let tensors = try #require(json["tensors"] as? [[String: Any]])
        #expect(tensors.first { $0["name"] as? String == "q4_1" }?["dtype"] as? String == "q4_1")
        #expect((json["metadata"] as? [String: String])?["general.architecture"] == "llama")
        #expect(try Self.wpack("verify", out).status == 0)
        // A cut file is one line and leaves nothing behind.
        let cut = folder.file("cut.gguf"), missing = folder.file("cut.wpk")
        try Data(try Data(contentsOf: URL(fileURLWithPath: gguf)).prefix(700)).write(to: URL(fileURLWithPath: cut))
        let r = try Self.wpack("pack", cut, "-o", missing)
        #expect(r.status != 0 && r.stderr.split(separator: "\n").count == 1 && !FileManager.default.fileExists(atPath: missing),
                "\(r.stderr)")
    }

    static func fixture(_ relative: String) -> String { repository.appendingPathComponent("Tests/Fixtures/" + relative).path }
    static let smollm2 = repository.appendingPathComponent(".cache/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path

    /// `wpack generate` and `wpack bench generate` on the real SmolLM2: the chat answer ends at
    /// the end of its turn, --json's ids are transformers' greedy ids, and every bad flag or
    /// model is one line and a non-zero exit.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: smollm2), "SmolLM2 GGUF absent: run tools/fetch-smollm2"))
    func generate() throws {
        let folder = Folder()
        let model = folder.file("smollm2.wpk")
        #expect(try Self.wpack("pack", Self.smollm2, "-o", model).status == 0)
        let chat = try Self.wpack("generate", model, "--chat", "--prompt", "What is the capital of France?", "--max-tokens", "16")
        #expect(chat.status == 0 && chat.stdout == "The capital of France is Paris.\n", "\(chat.stdout.debugDescription) \(chat.stderr)")
        let plain = try Self.wpack("generate", model, "--prompt", "The capital of France is", "--max-tokens", "8", "--ignore-eos", "--json")
        #expect(plain.status == 0, "\(plain.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(plain.stdout.utf8)) as? [String: Any])
        #expect(json["ids"] as? [Int] == [7042, 30, 198, 198, 504, 2988, 314, 42])
        #expect(json["text"] as? String == " Paris.\n\nThe answer is:" && json["prompt_tokens"] as? Int == 5)
        #expect(json["stop_reason"] as? String == "length" && json["generated_tokens"] as? Int == 8)
        let stopped = try Self.wpack("generate", model, "--prompt", "The capital of France is", "--stop", "\n", "--json")
        #expect((try JSONSerialization.jsonObject(with: Data(stopped.stdout.utf8)) as? [String: Any])?["text"] as? String == " Paris.")
        let sampled = ["generate", model, "--prompt", "Once upon a time", "--max-tokens", "6", "--temperature", "0.8", "--top-k", "40",
                       "--top-p", "0.9", "--min-p", "0.05", "--repeat-penalty", "1.1", "--seed", "7", "--json"]
        let runs = try [Self.wpack(sampled), Self.wpack(sampled)].map { r in
            try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stderr)")
        }
        #expect(runs[0]["ids"] as? [Int] == runs[1]["ids"] as? [Int] && runs[0]["seed"] as? Int == 7)
        #expect((runs[0]["ids"] as? [Int])?.count == 6)
        let bench = try Self.wpack("bench", "generate", model, "--prompt", "Hello there", "--tokens", "4", "--repeats", "1", "--json")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any], "\(bench.stderr)")
        #expect((report["prefill_tokens_per_second"] as? Double ?? 0) > 0 && (report["decode_tokens_per_second"] as? Double ?? 0) > 0)
        for bad in [["--system", "x"], ["--max-tokens", "0"], ["--temperature", "-1"], ["--top-p", "2"], ["--top-k", "-1"],
                    ["--stop", ""], ["--seed", "x"]] {
            let r = try Self.wpack(["generate", model, "--prompt", "Hi"] + bad)
            #expect(r.status != 0 && r.stderr.split(separator: "\n").count == 1 && r.stdout.isEmpty, "\(bad): \(r.stderr)")
        }
        let digits = folder.file("d.wpk")
        #expect(try Self.wpack("pack", Self.digits, "-o", digits).status == 0)
        let notDecoder = try Self.wpack("generate", digits, "--prompt", "Hi")
        #expect(notDecoder.status == 1 && notDecoder.stderr.split(separator: "\n").count == 1, "\(notDecoder.stderr)")
    }

    /// A Hugging Face folder packs into a decoder that `wpack generate` runs: greedy ids equal
    /// transformers' (the fixture's), a chat prompt comes from the folder's chat_template.jinja,
    /// and a model without a template refuses --chat in one line.
    @Test func generateFromAHuggingFaceFolder() throws {
        let folder = Folder()
        let qwen = folder.file("qwen2.wpk")
        let packed = try Self.wpack("pack", Self.fixture("decoders/qwen2"), "-o", qwen)
        #expect(packed.status == 0 && packed.stdout.contains("decoder: qwen2") && packed.stdout.contains("runs with: wpack generate"), "\(packed.stdout)")
        let r = try Self.wpack("generate", qwen, "--prompt", "The capital of France is", "--max-tokens", "12", "--ignore-eos", "--json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stderr)")
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.fixture("decoders/qwen2/expected.json")))) as? [String: Any])
        let first = try #require((expected["prompts"] as? [[String: Any]])?.first)
        #expect(json["ids"] as? [Int] == first["generated"] as? [Int])
        #expect(json["prompt_tokens"] as? Int == (first["ids"] as? [Int])?.count)
        let chat = try Self.wpack("generate", qwen, "--chat", "--prompt", "Hi", "--max-tokens", "3", "--json")
        let chatJSON = try #require(try JSONSerialization.jsonObject(with: Data(chat.stdout.utf8)) as? [String: Any], "\(chat.stderr)")
        #expect(chatJSON["prompt"] as? String == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        let gpt2 = folder.file("gpt2.wpk")
        #expect(try Self.wpack("pack", Self.fixture("decoders/gpt2"), "-o", gpt2).status == 0)
        let refused = try Self.wpack("generate", gpt2, "--chat", "--prompt", "Hi")
        #expect(refused.status == 1 && refused.stderr.contains("no chat template") && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    }

    @Test func packInspectVerifyUnpack() throws {
        let folder = Folder()
        let out = folder.file("d.wpk")
        let pack = try Self.wpack("pack", Self.digits, "-o", out, "--meta", "task=digits", "--meta", "note=a=b")
        #expect(pack.status == 0, "\(pack.stderr)")
        #expect(pack.stdout.contains("8 tensors"))

        let inspect = try Self.wpack("inspect", out, "--json")
        #expect(inspect.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
        #expect(json["alignment"] as? Int == 64)
        let metadata = try #require(json["metadata"] as? [String: String])
        #expect(metadata["task"] == "digits" && metadata["note"] == "a=b")
        let tensors = try #require(json["tensors"] as? [[String: Any]])
        #expect(tensors.count == 8)
        for t in tensors {
            for key in ["name", "dtype", "shape", "offset", "stored_bytes", "codec", "checksum"] {
                #expect(t[key] != nil, "inspect --json lacks \(key)")
            }
            #expect((t["offset"] as? Int ?? 1) % 64 == 0)
        }
        let human = try Self.wpack("inspect", out)
        #expect(human.status == 0 && human.stdout.contains("conv1.weight") && human.stdout.contains("[16, 1, 3, 3]"))

        let verify = try Self.wpack("verify", out)
        #expect(verify.status == 0 && verify.stdout.hasPrefix("ok: 8 tensors"))

        let unpacked = folder.file("u.safetensors")
        #expect(try Self.wpack("unpack", out, "-o", unpacked).status == 0)
        // The unpacked file holds the same bytes for every tensor as the original.
        #expect(try Self.safetensorsTensors(unpacked) == Self.safetensorsTensors(Self.digits))
        let npz = folder.file("u.npz")
        #expect(try Self.wpack("unpack", out, "-o", npz).status == 0)
        let repacked = folder.file("r.wpk")
        #expect(try Self.wpack("pack", npz, "-o", repacked).status == 0)
        let a = try Self.wpack("inspect", out, "--json").stdout, b = try Self.wpack("inspect", repacked, "--json").stdout
        #expect(Self.checksums(a) == Self.checksums(b))
    }

    @Test func alignmentAndCompressionOptions() throws {
        let folder = Folder()
        let page = folder.file("p.wpk")
        #expect(try Self.wpack("pack", Self.digits, "-o", page, "--align", "page").status == 0)
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let json = try JSONSerialization.jsonObject(with: Data(try Self.wpack("inspect", page, "--json").stdout.utf8)) as! [String: Any]
        #expect(json["alignment"] as? Int == pageSize)
        let z = folder.file("z.wpk")
        #expect(try Self.wpack("pack", Self.digits, "-o", z, "--compress", "zstd:9").status == 0)
        let zjson = try JSONSerialization.jsonObject(with: Data(try Self.wpack("inspect", z, "--json").stdout.utf8)) as! [String: Any]
        #expect((zjson["tensors"] as! [[String: Any]]).allSatisfy { $0["codec"] as? String == "zstd" })
        #expect(try Self.wpack("verify", z).status == 0)
        let unpacked = folder.file("z.safetensors")
        #expect(try Self.wpack("unpack", z, "-o", unpacked).status == 0)
        #expect(try Self.safetensorsTensors(unpacked) == Self.safetensorsTensors(Self.digits))
    }

    @Test(arguments: [
        ["pack", "-o", "x.wpk"],
        ["pack", "DIGITS", "-o", "x.wpk", "--align", "3"],
        ["pack", "DIGITS", "-o", "x.wpk", "--align", "2097152"],
        ["pack", "DIGITS", "-o", "x.wpk", "--compress", "lz4"],
        ["pack", "DIGITS", "-o", "x.wpk", "--compress", "zstd:99"],
        ["pack", "DIGITS", "-o", "x.wpk", "--meta", "novalue"],
        ["pack", "DIGITS"],
        ["unpack", "x.wpk", "-o", "x.txt"],
        ["frobnicate"],
        ["inspect"],
    ])
    func usageErrorsExitTwoAndWriteNothing(arguments: [String]) throws {
        let folder = Folder()
        let args = arguments.map { $0 == "DIGITS" ? Self.digits : $0.hasPrefix("x.") ? folder.file($0) : $0 }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = args
        process.standardOutput = Pipe()
        let err = Pipe()
        process.standardError = err
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 2, "\(arguments): \(stderr)")
        #expect(stderr.contains("Error") || stderr.contains("error"))
        #expect(folder.contents.isEmpty)
    }

    @Test func badInputsExitOneWithOneLineAndNoOutput() throws {
        let folder = Folder()
        let junk = folder.file("junk.safetensors")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: junk))
        let notWpk = folder.file("not.wpk")
        try Data(repeating: 7, count: 500).write(to: URL(fileURLWithPath: notWpk))
        let cases: [[String]] = [
            ["pack", folder.file("missing.npy"), "-o", folder.file("o.wpk")],
            ["pack", junk, "-o", folder.file("o.wpk")],
            ["pack", Self.digits, Self.digits, "-o", folder.file("o.wpk")],
            ["pack", Self.digits, "-o", folder.file("nofolder/o.wpk")],
            ["inspect", notWpk],
            ["verify", folder.file("missing.wpk")],
            ["unpack", notWpk, "-o", folder.file("o.npz")],
        ]
        for args in cases {
            let before = folder.contents
            let r = try Self.wpack(args)
            #expect(r.status == 1 || r.status == 2, "\(args): \(r.status) \(r.stderr)")
            if r.status == 1 {
                #expect(r.stderr.hasPrefix("wpack: error: "), "\(args): \(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
            }
            #expect(folder.contents == before, "\(args) left files behind")
        }
    }

    /// A store of a newer minor version whose tensor 'b' has a dtype this reader does not know
    /// (found by tools/fuzz-mutate.py): inspect lists it, and verify, which used to pass it,
    /// fails as unpack does, each with one line, leaving nothing behind.
    @Test func aNewerFormatsDTypeFailsVerifyAsItFailsUnpack() throws {
        let store = Self.fixture("wpk/newer-minor-unknown-dtype.wpk")
        let inspect = try Self.wpack("inspect", store)
        #expect(inspect.status == 0 && inspect.stdout.contains("wpk 1.65535"), "\(inspect.stdout)")
        let verify = try Self.wpack("verify", store)
        #expect(verify.status == 1 && verify.stdout.isEmpty, "\(verify.stdout)")
        #expect(verify.stderr.hasPrefix("wpack: error: tensor 'b': dtype code ") && verify.stderr.contains("newer than this wpack reads"),
                "\(verify.stderr)")
        #expect(verify.stderr.split(separator: "\n").count == 1)
        let folder = Folder()
        let unpack = try Self.wpack("unpack", store, "-o", folder.file("u.npz"))
        #expect(unpack.status == 1 && unpack.stderr.split(separator: "\n").count == 1, "\(unpack.stderr)")
        #expect(folder.contents.isEmpty)
    }

    @Test func damagedTensorIsNamedAndExitsOne() throws {
        let folder = Folder()
        let out = folder.file("d.wpk")
        #expect(try Self.wpack("pack", Self.digits, "-o", out).status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(try Self.wpack("inspect", out, "--json").stdout.utf8)) as! [String: Any]
        let fc1 = (json["tensors"] as! [[String: Any]]).first { $0["name"] as? String == "fc1.weight" }!
        var bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        bytes[fc1["offset"] as! Int + 100] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: out))
        let r = try Self.wpack("verify", out)
        #expect(r.status == 1)
        #expect(r.stderr.contains("fc1.weight") && r.stderr.contains("checksum"))
        // unpack refuses too, and leaves no output behind
        let u = try Self.wpack("unpack", out, "-o", folder.file("u.safetensors"))
        #expect(u.status == 1)
        #expect(!FileManager.default.fileExists(atPath: folder.file("u.safetensors")))
    }

    @Test func outputThatIsAlsoAnInputIsRefused() throws {
        let folder = Folder()
        let copy = folder.file("d.safetensors")
        try FileManager.default.copyItem(atPath: Self.digits, toPath: copy)
        let r = try Self.wpack("pack", copy, "-o", copy)
        #expect(r.status == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == Data(contentsOf: URL(fileURLWithPath: Self.digits)))
    }

    static func safetensorsTensors(_ path: String) throws -> [String: Data] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + n)) as! [String: Any]
        var out: [String: Data] = [:]
        for (name, v) in header where name != "__metadata__" {
            let offsets = (v as! [String: Any])["data_offsets"] as! [Int]
            out[name] = data.subdata(in: 8 + n + offsets[0]..<8 + n + offsets[1])
        }
        return out
    }

    static func checksums(_ inspectJSON: String) -> [String: String] {
        let json = try! JSONSerialization.jsonObject(with: Data(inspectJSON.utf8)) as! [String: Any]
        return Dictionary(uniqueKeysWithValues: (json["tensors"] as! [[String: Any]]).map {
            ($0["name"] as! String, $0["checksum"] as! String)
        })
    }
}

/// `wpack info`, and WPACK_ISA as the tool reads it.
@Suite struct InfoCommandTests {
    @Test func infoNamesTheCPUAndTheKernelsInUse() throws {
        let r = try CommandLineTests.wpack("info", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(doc["level"] as? String == doc["detected_level"] as? String)
        #expect((doc["kernels"] as? [[String: Any]])?.isEmpty == false)
        #expect((doc["blas"] as? String)?.contains("OpenBLAS") == true)
        let text = try CommandLineTests.wpack("info").stdout
        #expect(text.contains("kernel level:") && text.contains("features:"))
        // --version: the format and the kernels in use, capped as WPACK_ISA says.
        let version = try CommandLineTests.wpack(["--version"], environment: ["WPACK_ISA": "avx2"])
        #expect(version.status == 0 && version.stdout.hasPrefix("wpack, .wpk format 1.1"), "\(version.stdout)")
        #expect(version.stdout.contains("GEMM (packed panels") && !version.stdout.contains(": avx512"), "\(version.stdout)")
    }

    /// `bench peak`: a positive FMA peak at the level in use, and the GEMM rows it timed.
    @Test func benchPeakReportsThePeakAndTheGEMMs() throws {
        let r = try CommandLineTests.wpack("bench", "peak", "--rows", "64", "--repeats", "1", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect((doc["fma_peak_gflops_one_core"] as? Double ?? 0) > 0 && (doc["fma_peak_gflops"] as? Double ?? 0) > 0)
        #expect((doc["gemm"] as? [[String: Any]])?.count == 6)
        #expect((doc["gemm_fraction_of_peak"] as? Double ?? 0) > 0)
    }

    @Test func wpackIsaCapsTheLevelAndAnUnknownOneIsRefused() throws {
        let capped = try CommandLineTests.wpack(["info", "--json"], environment: ["WPACK_ISA": "baseline"])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(capped.stdout.utf8)) as? [String: Any])
        #expect(doc["level"] as? String == "baseline")
        #expect((doc["kernels"] as? [[String: Any]])?.allSatisfy { $0["in_use"] as? String == "baseline" } == true)
        let bad = try CommandLineTests.wpack(["info"], environment: ["WPACK_ISA": "sse4"])
        #expect(bad.status == 1 && bad.stderr == "wpack: error: WPACK_ISA=sse4 is not a kernel level: use baseline, avx2 or avx512\n",
                "\(bad.stderr)")
    }
}

/// `wpack run` and `wpack embed` as a user runs them.
@Suite struct ModelCommandTests {
    static let fixtures = CommandLineTests.repository.appendingPathComponent("Tests/Fixtures/digits-cnn").path
    static let minilm = CommandLineTests.repository.appendingPathComponent(".cache/minilm/model").path

    @Test func runTheDigitsCNN() throws {
        let folder = CommandLineTests.Folder()
        let model = folder.file("d.wpk")
        #expect(try CommandLineTests.wpack("pack", Self.fixtures + "/digits_cnn.safetensors", "--layers", Self.fixtures + "/layers.json", "-o", model).status == 0)
        let r = try CommandLineTests.wpack("run", model, "--input", Self.fixtures + "/test_images.npy", "--labels", Self.fixtures + "/test_labels.npy")
        #expect(r.status == 0 && r.stdout.contains("accuracy: 393/397"), "\(r.stderr)")
        let out = folder.file("logits.npy")
        #expect(try CommandLineTests.wpack("run", model, "--input", Self.fixtures + "/test_images.npy", "--output", out).status == 0)
        // The written logits, read back by packing them, have the reference's shape.
        let inspect = try CommandLineTests.wpack("pack", out, "-o", folder.file("l.wpk"))
        #expect(inspect.status == 0)
        #expect(try CommandLineTests.wpack("inspect", folder.file("l.wpk")).stdout.contains("[397, 10]"))
        // Per-row predictions without --output.
        let plain = try CommandLineTests.wpack("run", model, "--input", Self.fixtures + "/test_images.npy")
        #expect(plain.stdout.split(separator: "\n").count == 397)
        // Integers (labels given as the input, by mistake) are refused, not converted.
        let wrong = try CommandLineTests.wpack("run", model, "--input", Self.fixtures + "/test_labels.npy")
        #expect(wrong.status == 1 && wrong.stderr.contains("not floating-point data"), "\(wrong.stderr)")
    }

    /// `wpack bench decode`: both decode loops give the same tokens; the cached one plans once.
    @Test func benchDecode() throws {
        let r = try CommandLineTests.wpack("bench", "decode", "--steps", "6", "--width", "32", "--layers", "2", "--heads", "4",
                                           "--kv-heads", "2", "--vocab", "50", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let cached = try #require(doc["kv_cache"] as? [[String: Any]]), grown = try #require(doc["concatenate"] as? [[String: Any]])
        #expect(cached.count == 6 && grown.count == 6)
        #expect(cached.dropFirst().allSatisfy { $0["plans"] as? Int == 0 })
        #expect(Set(cached.map { $0["kernels"] as? Int ?? -1 }).count == 1)
        #expect(Set(cached.map { $0["bytes_copied"] as? Int ?? -1 }).count == 1)
        #expect(try CommandLineTests.wpack("bench", "decode", "--heads", "3").status == 2)
    }

    /// The bench subcommands compare.py drives: their JSON carries what it reads.
    @Test func benchReportsJSON() throws {
        let folder = CommandLineTests.Folder()
        let model = folder.file("d.wpk")
        #expect(try CommandLineTests.wpack("pack", Self.fixtures + "/digits_cnn.safetensors", "--layers", Self.fixtures + "/layers.json", "-o", model).status == 0)
        let run = try CommandLineTests.wpack("bench", "run", model, "--input", Self.fixtures + "/test_images.npy", "--repeats", "1", "--json")
        #expect(run.status == 0, "\(run.stderr)")
        let row = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(row["kernels"] as? Int == 4 && row["rows"] as? Int == 397 && (row["median_ms"] as? Double ?? 0) > 0)
        let open = try CommandLineTests.wpack("bench", "open", model, "--repeats", "3", "--json")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(open.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 1 && rows[0]["tensors"] as? Int == 8 && rows[0]["repeats"] as? Int == 3)
        for bad in [["bench", "ops", "--repeats", "0"], ["bench", "run", model, "--input", Self.fixtures + "/test_images.npy", "--repeats", "0"]] {
            let r = try CommandLineTests.wpack(bad)
            #expect(r.status == 2 && r.stderr.contains("--repeats must be positive"), "\(bad): \(r.stderr)")
        }
        let missing = try CommandLineTests.wpack("bench", "run", folder.file("missing.wpk"), "--input", Self.fixtures + "/test_images.npy")
        #expect(missing.status == 1 && missing.stderr.hasPrefix("wpack: error: "))
        // WPACK_PROFILE=1: the time per kind of kernel, on standard error at exit.
        let profiled = try CommandLineTests.wpack(["run", model, "--input", Self.fixtures + "/test_images.npy", "--stats"],
                                                  environment: ["WPACK_PROFILE": "1"])
        let lines = profiled.stderr.split(separator: "\n")
        #expect(profiled.status == 0 && lines.first?.contains("kernel [output shape]") == true, "\(profiled.stderr)")
        #expect(lines.contains { $0.hasSuffix("conv2d + epilogue + pool2d [397, 32, 4, 4]") } && lines.contains { $0.hasSuffix("plan") })
    }

    @Test func wrongInputsAreOneLineErrors() throws {
        let folder = CommandLineTests.Folder()
        let model = folder.file("d.wpk")
        #expect(try CommandLineTests.wpack("pack", Self.fixtures + "/digits_cnn.safetensors", "--layers", Self.fixtures + "/layers.json", "-o", model).status == 0)
        let plain = folder.file("plain.wpk")
        #expect(try CommandLineTests.wpack("pack", Self.fixtures + "/digits_cnn.safetensors", "-o", plain).status == 0)
        let cases: [[String]] = [
            ["run", model, "--input", Self.fixtures + "/test_labels.npy"],          // integers, wrong shape
            ["run", model, "--input", Self.fixtures + "/test_logits.npy"],          // wrong shape
            ["run", plain, "--input", Self.fixtures + "/test_images.npy"],          // no layer list
            ["run", model, "--input", folder.file("missing.npy")],
            ["embed", model, "hello"],                                               // not an encoder
            ["pack", Self.fixtures + "/digits_cnn.safetensors", "--layers", Self.fixtures + "/test_images.npy", "-o", folder.file("x.wpk")],
        ]
        for args in cases {
            let r = try CommandLineTests.wpack(args)
            #expect(r.status == 1, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.hasPrefix("wpack: error: ") && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.file("x.wpk")))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: minilm + "/model.safetensors"), "MiniLM weights absent: run tools/fetch-minilm"))
    func embedPrintsVectors() throws {
        let folder = CommandLineTests.Folder()
        let model = folder.file("m.wpk")
        #expect(try CommandLineTests.wpack("pack", Self.minilm, "-o", model).status == 0)
        let r = try CommandLineTests.wpack("embed", model, "hello world", "a second text", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let vectors = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[Double]])
        #expect(vectors.count == 2 && vectors.allSatisfy { $0.count == 384 })
        #expect(vectors.allSatisfy { abs($0.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4 })
        let lines = folder.file("lines.txt")
        try "hello world\na second text\n".write(toFile: lines, atomically: true, encoding: .utf8)
        let fromFile = try CommandLineTests.wpack("embed", model, "--file", lines, "--json")
        #expect(fromFile.stdout == r.stdout)
        #expect(try CommandLineTests.wpack("embed", model).status == 1)
        #expect(try CommandLineTests.wpack("embed", model, "x", "--batch-size", "0").status == 2)
    }
}
