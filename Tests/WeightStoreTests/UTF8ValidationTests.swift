import CKernels
import Testing
@testable import WeightStore

/// The store's own UTF-8 validator must agree with the standard library's on every input, with
/// its ASCII scan on the AVX2 build (32 bytes at a time) and the baseline one.
@Suite(.serialized) struct UTF8ValidationTests {
    @Test func knownCases() {
        let cases: [([UInt8], UTF8Validation.Outcome)] = [
            ([], .valid), (Array("hello, world".utf8), .valid), (Array("héllo ✓ 𝄞 中文".utf8), .valid),
            ([0x41, 0x00, 0x42], .containsNUL), ([0xC0, 0x80], .invalid), ([0xED, 0xA0, 0x80], .invalid),
            ([0xF4, 0x90, 0x80, 0x80], .invalid), ([0xE2, 0x82], .invalid), ([0x80], .invalid), ([0xFF], .invalid),
            (Array("0123456789abcdef".utf8) + [0], .containsNUL),
        ]
        for (bytes, expected) in cases {
            #expect(bytes.withUnsafeBytes { UTF8Validation.check($0) } == expected, "\(bytes)")
        }
    }

    @Test(arguments: [false, true])
    func randomInputsAgreeWithTheStandardLibrary(baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        var rng = SplitMix(state: 2024)
        let alphabet: [[UInt8]] = [[0x61], [0x7A], [0], [0x80], [0xBF], [0xC2], [0xDF], [0xE0], [0xED], [0xEF],
                                   [0xF0], [0xF4], [0xF5], [0xFF], Array("é".utf8), Array("中".utf8), Array("𝄞".utf8),
                                   Array("plain ascii text".utf8), Array(String(repeating: "x", count: 37).utf8)]
        for _ in 0..<20_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(rng.next() % 12) { bytes += alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let got = bytes.withUnsafeBytes { UTF8Validation.check($0) }
            let validUTF8 = String(validating: bytes, as: UTF8.self) != nil
            switch (validUTF8, bytes.contains(0)) {
            case (true, false): #expect(got == .valid, "\(bytes)")
            case (true, true): #expect(got == .containsNUL, "\(bytes)")
            case (false, false): #expect(got == .invalid, "\(bytes)")
            case (false, true): #expect(got != .valid, "\(bytes)")  // either refusal is right
            }
        }
    }
}
