import Foundation
import LazyTensor
import Testing
@testable import WeightStore

/// The real all-MiniLM-L6-v2 model folder (fetched by tools/fetch-minilm into .cache/minilm),
/// packed and checked against its source bit for bit. Skipped, visibly, where it is absent.
enum MiniLM {
    static let model = Fixtures.repository.appendingPathComponent(".cache/minilm/model").path
    static var available: Bool { FileManager.default.fileExists(atPath: model + "/model.safetensors") }
}

@Suite(.enabled(if: MiniLM.available, "MiniLM weights absent: run tools/fetch-minilm"))
struct MiniLMPackTests {

    @Test func packedModelVerifiesIsAlignedAndEqualsItsSource() throws {
        let folder = TemporaryFolder()
        let out = folder.file("minilm.wpk")
        try InterchangeTests.pack([MiniLM.model], to: out)
        let store = try WeightStore(path: out, verify: .eager)
        #expect(store.infos.count == 104)
        #expect(store.infos.allSatisfy { $0.offset % 64 == 0 })
        #expect(store.info("embeddings.position_ids")?.dtype == .int64)
        #expect(store.info("embeddings.word_embeddings.weight")?.shape == [30522, 384])
        #expect(store.metadata["file:vocab.txt"]?.hasPrefix("[PAD]") == true)
        #expect(store.metadata["file:config.json"]?.contains("\"hidden_size\": 384") == true)

        // Every tensor equals the source's bytes (the source is read independently of the packer).
        let source = try MappedFile(path: MiniLM.model + "/model.safetensors")
        let headerLength = Int(source.bytes.loadUnaligned(as: UInt64.self))
        let header = try JSONSerialization.jsonObject(with: Data(source.bytes[8..<8 + headerLength])) as! [String: Any]
        for (name, entry) in header where name != "__metadata__" {
            let offsets = (entry as! [String: Any])["data_offsets"] as! [Int]
            let original = UnsafeRawBufferPointer(rebasing: source.bytes[(8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1])])
            let same = try store.withRawBytes(name) { $0.elementsEqual(original) }
            #expect(same, "\(name) differs from its source")
        }

        // Views of every float tensor: no copy, no allocation.
        let (_, stats) = try Stats.measure {
            try store.infos.filter(\.isMappable).map { try store.tensor($0.name) }
        }
        #expect(stats.bytesCopied == 0 && stats.bytesAllocated == 0)
    }
}
