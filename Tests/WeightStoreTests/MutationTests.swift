import Foundation
import Testing
@testable import WeightStore

/// Damaged files of every kind must open correctly or throw: never trap, never read out of
/// bounds. A trap here kills the test process, which is how a failure shows.
@Suite struct MutationTests {
    static func sampleBytes(compress: Bool) throws -> [UInt8] {
        let folder = TemporaryFolder()
        try writeSampleStore(to: folder.file("s.wpk"), compress: compress)
        return Array(try Data(contentsOf: URL(fileURLWithPath: folder.file("s.wpk"))))
    }

    /// Opens, and if that works reads every tensor and verifies: all must end in a value or a
    /// WeightStoreError. Returns whether the file opened.
    @discardableResult
    static func exercise(_ bytes: [UInt8], in folder: TemporaryFolder) -> Bool {
        let path = folder.file("m.wpk")
        try! Data(bytes).write(to: URL(fileURLWithPath: path))
        let store: WeightStore
        do { store = try WeightStore(path: path) } catch { return false }
        for name in store.tensorNames {
            _ = try? store.tensor(name).scalars
            _ = try? store.withRawBytes(name) { $0.count }
        }
        _ = try? store.verify()
        return true
    }

    @Test(arguments: [false, true])
    func everyTruncationIsRefused(compress: Bool) throws {
        let bytes = try Self.sampleBytes(compress: compress)
        let folder = TemporaryFolder()
        for length in 0..<bytes.count {
            #expect(!Self.exercise(Array(bytes[0..<length]), in: folder), "truncated to \(length) bytes, still opened")
        }
        #expect(Self.exercise(bytes, in: folder))
    }

    @Test(arguments: [false, true])
    func randomByteFlipsNeverCrash(compress: Bool) throws {
        let bytes = try Self.sampleBytes(compress: compress)
        let folder = TemporaryFolder()
        var rng = SplitMix(state: compress ? 11 : 7)
        var opened = 0
        for _ in 0..<2000 {
            var damaged = bytes
            for _ in 0..<Int(rng.next() % 4 + 1) {
                damaged[Int(rng.next() % UInt64(damaged.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            }
            if Self.exercise(damaged, in: folder) { opened += 1 }
        }
        // Flips in tensor data or padding open (and are caught by verify); the header is hashed.
        #expect(opened < 2000)
    }

    @Test func insertionsAndDeletionsAreRefused() throws {
        let bytes = try Self.sampleBytes(compress: true)
        let folder = TemporaryFolder()
        var rng = SplitMix(state: 3)
        for _ in 0..<500 {
            var damaged = bytes
            let at = Int(rng.next() % UInt64(damaged.count))
            if rng.next() % 2 == 0 {
                damaged.insert(contentsOf: (0..<Int(rng.next() % 16 + 1)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            } else {
                damaged.removeSubrange(at..<min(damaged.count, at + Int(rng.next() % 16 + 1)))
            }
            #expect(!Self.exercise(damaged, in: folder), "a file with bytes inserted or removed at \(at) opened")
        }
    }

    /// Hash-correct but structurally random headers: flips inside the header followed by a
    /// rehash reach the record checks instead of stopping at the checksum.
    @Test func rehashedHeaderDamageNeverCrashes() throws {
        let bytes = try Self.sampleBytes(compress: true)
        let layout = ValidationTests.Layout(bytes: bytes)
        let folder = TemporaryFolder()
        var rng = SplitMix(state: 99)
        for _ in 0..<3000 {
            var damaged = bytes
            for _ in 0..<Int(rng.next() % 3 + 1) {
                let at = 64 + Int(rng.next() % UInt64(layout.headerLength))
                damaged[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            ValidationTests.rehash(&damaged)
            Self.exercise(damaged, in: folder)
        }
    }
}
