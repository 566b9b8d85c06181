import Foundation
import Testing

/// `wpack pack` of model folders and `wpack embed`, on the small encoder fixtures (always
/// present, so these run on a fresh clone without network).
@Suite struct EncoderCommandTests {
    static let encoders = CommandLineTests.repository.appendingPathComponent("Tests/Fixtures/encoders").path
    typealias CLI = CommandLineTests

    static func packed(_ family: String, in folder: CLI.Folder) throws -> String {
        let out = folder.file(family + ".wpk")
        let r = try CLI.wpack("pack", encoders + "/" + family, "-o", out)
        #expect(r.status == 0, "\(r.stderr)")
        return out
    }

    @Test func packSaysWhatTheFolderHolds() throws {
        let folder = CLI.Folder()
        let r = try CLI.wpack("pack", Self.encoders + "/mpnet", "-o", folder.file("m.wpk"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("encoder: mpnet, 2 layers, hidden 32"), "\(r.stdout)")
        #expect(r.stdout.contains("tokenizer: WordPiece (tokenizer.json)"))
        #expect(r.stdout.contains("sentence embedding: mean pooling, normalize; 32 dimensions"))
        #expect(r.stdout.contains("runs with: wpack embed"))
    }

    /// A hub cache snapshot: every file a symlink into a blobs folder, named by hash.
    @Test func hubSnapshotOfSymlinksPacks() throws {
        let folder = CLI.Folder()
        let fm = FileManager.default
        let blobs = folder.file("blobs"), snapshot = folder.file("snapshots/abc123")
        try fm.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        let source = Self.encoders + "/bert"
        for case let rel as String in fm.enumerator(atPath: source)! {
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: source + "/" + rel, isDirectory: &isDir)
            if isDir.boolValue { continue }
            let blob = blobs + "/" + String(rel.hashValue, radix: 16).replacingOccurrences(of: "-", with: "m")
            try fm.copyItem(atPath: source + "/" + rel, toPath: blob)
            try fm.createDirectory(atPath: ((snapshot + "/" + rel) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: snapshot + "/" + rel, withDestinationPath: blob)
        }
        let direct = try CLI.wpack("embed", try Self.packed("bert", in: folder), "hello", "--json")
        let r = try CLI.wpack("pack", snapshot, "-o", folder.file("snap.wpk"))
        #expect(r.status == 0, "\(r.stderr)")
        let viaSnapshot = try CLI.wpack("embed", folder.file("snap.wpk"), "hello", "--json")
        #expect(viaSnapshot.status == 0 && viaSnapshot.stdout == direct.stdout)
        // A dangling link (a blob not downloaded) is one clear line, and no output file.
        try fm.createSymbolicLink(atPath: snapshot + "/extra.json", withDestinationPath: blobs + "/missing")
        let broken = try CLI.wpack("pack", snapshot, "-o", folder.file("broken.wpk"))
        #expect(broken.status == 1 && broken.stderr.contains("broken symlink"), "\(broken.stderr)")
        #expect(!fm.fileExists(atPath: folder.file("broken.wpk")))
    }

    /// A folder that would fail at embed time is refused at pack time, with the reason, and
    /// leaves no file.
    @Test func unrunnableFolderIsRefusedAtPackTime() throws {
        let folder = CLI.Folder()
        let model = folder.file("model")
        try FileManager.default.copyItem(atPath: Self.encoders + "/bert", toPath: model)
        try #"{"word_embedding_dimension": 32, "pooling_mode": "median"}"#.write(toFile: model + "/1_Pooling/config.json", atomically: true, encoding: .utf8)
        let r = try CLI.wpack("pack", model, "-o", folder.file("m.wpk"))
        #expect(r.status == 1 && r.stderr.hasPrefix("wpack: error: ") && r.stderr.contains("pooling mode 'median'"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(folder.contents == ["model"], "\(folder.contents)")
    }

    @Test func embedFileLinesCRLFAndEmpty() throws {
        let folder = CLI.Folder()
        let model = try Self.packed("bert", in: folder)
        let args = try CLI.wpack("embed", model, "first line", "second line", "--json")
        try "first line\r\nsecond line\r\n".write(toFile: folder.file("crlf.txt"), atomically: true, encoding: .utf8)
        let crlf = try CLI.wpack("embed", model, "--file", folder.file("crlf.txt"), "--json")
        #expect(crlf.status == 0 && crlf.stdout == args.stdout, "\(crlf.stderr)")
        try "first line\nsecond line".write(toFile: folder.file("lf.txt"), atomically: true, encoding: .utf8)
        #expect(try CLI.wpack("embed", model, "--file", folder.file("lf.txt"), "--json").stdout == args.stdout)
        #expect(FileManager.default.createFile(atPath: folder.file("empty.txt"), contents: Data()))
        let empty = try CLI.wpack("embed", model, "--file", folder.file("empty.txt"))
        #expect(empty.status == 1 && empty.stderr.contains("empty"), "\(empty.stderr)")
        #expect(FileManager.default.createFile(atPath: folder.file("bad.txt"), contents: Data([0xFF, 0xFE, 0x41])))
        #expect(try CLI.wpack("embed", model, "--file", folder.file("bad.txt")).status == 1)
    }

    @Test func promptsByNameAndByText() throws {
        let folder = CLI.Folder()
        let model = try Self.packed("electra", in: folder)  // sentence-transformers wrote empty "query" and "document" prompts
        let named = try CLI.wpack("embed", model, "hello", "--prompt-name", "query", "--json")
        let literal = try CLI.wpack("embed", model, "hello", "--prompt", "query: ", "--json")
        let plain = try CLI.wpack("embed", model, "hello", "--json")
        #expect(named.status == 0 && literal.status == 0, "\(named.stderr) \(literal.stderr)")
        #expect(named.stdout == plain.stdout)
        #expect(literal.stdout != plain.stdout)
        let unknown = try CLI.wpack("embed", model, "hello", "--prompt-name", "nope")
        #expect(unknown.status == 1 && unknown.stderr.contains("no prompt named 'nope'"), "\(unknown.stderr)")
        #expect(try CLI.wpack("embed", model, "x", "--prompt", "a", "--prompt-name", "query").status == 2)
    }
}

@Suite struct RerankCommandTests {
    typealias CLI = CommandLineTests
    static let model = CLI.repository.appendingPathComponent("Tests/Fixtures/cross-encoders").path

    @Test func rerankPrintsDocumentsBestFirst() throws {
        let folder = CLI.Folder()
        let packed = try CLI.wpack("pack", Self.model + "/roberta", "-o", folder.file("ce.wpk"))
        #expect(packed.status == 0 && packed.stdout.contains("cross-encoder: roberta") && packed.stdout.contains("runs with: wpack rerank"), "\(packed.stdout)\(packed.stderr)")
        let docs = ["Paris is the capital of France.", "A man is eating food.", "Cats sleep a lot."]
        let r = try CLI.wpack(["rerank", folder.file("ce.wpk"), "--query", "capital of France", "--json"] + docs)
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 3)
        let scores = rows.map { $0["score"] as! Double }
        #expect(scores == scores.sorted(by: >))
        #expect(Set(rows.map { $0["index"] as! Int }) == [0, 1, 2])
        #expect((rows[0]["scores"] as? [String: Double])?.keys.sorted() == ["contradiction", "entailment", "neutral"])
        try docs.joined(separator: "\n").write(toFile: folder.file("docs.txt"), atomically: true, encoding: .utf8)
        let fromFile = try CLI.wpack("rerank", folder.file("ce.wpk"), "--query", "capital of France", "--file", folder.file("docs.txt"), "--json")
        #expect(fromFile.stdout == r.stdout)
        let text = try CLI.wpack(["rerank", folder.file("ce.wpk"), "--query", "capital of France"] + docs)
        #expect(text.stdout.split(separator: "\n").count == 3)
        #expect(try CLI.wpack("rerank", folder.file("ce.wpk"), "--query", "q").status == 1)
        #expect(try CLI.wpack("rerank", folder.file("ce.wpk"), "doc").status == 2)
    }
}
