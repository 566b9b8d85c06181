import Foundation
import Testing
@testable import Models
import WeightStore

/// Variants of the real all-MiniLM-L6-v2 folder (pooling modes, no Normalize, tokenizer and
/// sentence-transformers options, a prompt left out of pooling, a Dense module, tokenizer.json
/// or vocab.txt alone) against sentence-transformers' vectors for each. Each variant folder is
/// a folder of symlinks to the real files, as a Hugging Face cache snapshot is, with the
/// variant's files over it.
@Suite(.enabled(if: Fixtures.minilmAvailable, "MiniLM weights absent: run tools/fetch-minilm"))
struct SentenceTransformerVariantTests {
    static let variants = ["cls", "max", "mean-sqrt-len", "weighted-mean", "last-token", "cls-and-mean", "legacy-max",
                           "no-normalize", "no-strip-accents", "cased", "cased-lowercased-input", "short-max-length",
                           "prompt-excluded", "dense", "tokenizer-json-only", "vocab-txt-only"]

    /// A symlink folder of MiniLM with the variant's files over it.
    static func folder(for variant: String, in temp: TemporaryFolder) throws -> String {
        let fm = FileManager.default
        let root = temp.file("model")
        let expected = Fixtures.json("st-variants/\(variant)/expected.json")
        let removed = Set(expected["removed"]!.array!.map { $0.string! })
        let overlay = Fixtures.path("st-variants/\(variant)/files")
        var overlaid: Set<String> = []
        if let walker = fm.enumerator(atPath: overlay) {
            for case let rel as String in walker {
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: overlay + "/" + rel, isDirectory: &isDir), !isDir.boolValue { overlaid.insert(rel) }
            }
        }
        for case let rel as String in fm.enumerator(atPath: Fixtures.minilmFolder)! {
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: Fixtures.minilmFolder + "/" + rel, isDirectory: &isDir)
            if isDir.boolValue { try fm.createDirectory(atPath: root + "/" + rel, withIntermediateDirectories: true); continue }
            if removed.contains(rel) || overlaid.contains(rel) { continue }
            try fm.createDirectory(atPath: (root + "/" + rel as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: root + "/" + rel, withDestinationPath: Fixtures.minilmFolder + "/" + rel)
        }
        for rel in overlaid {
            try fm.createDirectory(atPath: (root + "/" + rel as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fm.copyItem(atPath: overlay + "/" + rel, toPath: root + "/" + rel)
        }
        return root
    }

    @Test(arguments: variants) func vectorsMatchSentenceTransformers(variant: String) throws {
        let temp = TemporaryFolder()
        try pack([Self.folder(for: variant, in: temp)], to: temp.file("m.wpk"))
        let model = try SentenceEncoder(store: WeightStore(path: temp.file("m.wpk")))
        let expected = Fixtures.json("st-variants/\(variant)/expected.json")
        let texts = expected["texts"]!.array!.map { $0.string! }
        let prompt = try expected["prompt_name"]!.string.map { try model.prompt(named: $0) }
        for (text, ids) in zip(texts, expected["input_ids"]!.array!) {
            #expect(model.tokenize((prompt ?? "") + text) == ids.ints, "\(variant): \(text.debugDescription)")
        }
        let vectors = try model.embed(texts, batchSize: 4, prompt: prompt)
        expectVectorsMatch(vectors, expected["vectors"]!, texts: texts, variant)
    }

    @Test func unknownModuleIsRefusedAtPackTime() throws {
        let temp = TemporaryFolder()
        let root = try Self.folder(for: "cls", in: temp)
        try FileManager.default.removeItem(atPath: root + "/modules.json")
        try #"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},{"idx":2,"name":"2","path":"2_LayerNorm","type":"sentence_transformers.models.LayerNorm"}]"#
            .write(toFile: root + "/modules.json", atomically: true, encoding: .utf8)
        try pack([root], to: temp.file("m.wpk"))
        let summary = ModelSummary(store: try WeightStore(path: temp.file("m.wpk")))
        #expect(summary.problem?.contains("sentence_transformers.models.LayerNorm") == true, "\(summary)")
        #expect(summary.runsWith.isEmpty)
    }
}

/// The real all-mpnet-base-v2 (the five PyPI wheels of tools/fetch-mpnet) against
/// sentence-transformers on 24 texts.
@Suite(.enabled(if: Fixtures.mpnetAvailable, "all-mpnet-base-v2 absent: run tools/fetch-mpnet"), .serialized)
struct MPNetTests {
    static let store: WeightStore? = {
        guard Fixtures.mpnetAvailable else { return nil }
        let path = MiniLMStore.folder.file("mpnet.wpk")
        try! pack([Fixtures.mpnetFolder], to: path)
        return try! WeightStore(path: path)
    }()

    @Test func idsAndVectorsMatchSentenceTransformers() throws {
        let model = try SentenceEncoder(store: Self.store!)
        #expect(model.config.architecture == .mpnet && model.maxLength == 384 && model.normalizes)
        let expected = Fixtures.json("mpnet/reference.json")
        let texts = expected["texts"]!.array!.map { $0.string! }
        for (text, ids) in zip(texts, expected["input_ids"]!.array!) {
            #expect(model.tokenize(text) == ids.ints, "\(text.debugDescription)")
        }
        let vectors = try model.embed(texts, batchSize: 8)
        expectVectorsMatch(vectors, expected["vectors"]!, texts: texts, "all-mpnet-base-v2")
    }
}
