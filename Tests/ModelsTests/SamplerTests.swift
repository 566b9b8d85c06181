import Foundation
import Testing
@testable import Models

struct SamplerTests {
    @Test func greedyTakesTheFirstLargest() throws {
        var s = try Sampler(SamplingOptions())
        #expect(s.next(logits: [1, 3, 3, 2], context: []) == 1)
        #expect(Sampler.argmax([-1, -1]) == 0)
    }

    @Test func sameSeedSameDraws() throws {
        let options = SamplingOptions(temperature: 1, seed: 42)
        var a = try Sampler(options), b = try Sampler(options)
        var c = try Sampler(SamplingOptions(temperature: 1, seed: 43))
        let logits: [Float] = (0..<50).map { Float($0 % 7) * 0.3 }
        let x = (0..<200).map { _ in a.next(logits: logits, context: []) }
        let y = (0..<200).map { _ in b.next(logits: logits, context: []) }
        let z = (0..<200).map { _ in c.next(logits: logits, context: []) }
        #expect(x == y)
        #expect(x != z)
    }

    /// Probabilities 1/4 and 3/4: over 8000 seeded draws the share is within 2% of 3/4.
    @Test func drawsFollowTheSoftmax() throws {
        var s = try Sampler(SamplingOptions(temperature: 1, seed: 7))
        let logits: [Float] = [0, Float(log(3.0))]
        let ones = (0..<8000).filter { _ in s.next(logits: logits, context: []) == 1 }.count
        #expect(abs(Double(ones) / 8000 - 0.75) < 0.02)
        // Temperature 0.5 squares the odds: 9 to 1.
        var t = try Sampler(SamplingOptions(temperature: 0.5, seed: 7))
        let hot = (0..<8000).filter { _ in t.next(logits: logits, context: []) == 1 }.count
        #expect(abs(Double(hot) / 8000 - 0.9) < 0.02)
    }

    @Test func filtersKeepWhatTheySay() throws {
        let p: [Double] = [0.5, 0.3, 0.15, 0.05]
        let logits = p.map { Float(log($0)) }
        func draws(_ o: SamplingOptions) throws -> Set<Int> {
            var s = try Sampler(o)
            return Set((0..<2000).map { _ in s.next(logits: logits, context: []) })
        }
        #expect(try draws(SamplingOptions(temperature: 1, seed: 1)) == [0, 1, 2, 3])
        #expect(try draws(SamplingOptions(temperature: 1, topK: 2, seed: 1)) == [0, 1])
        #expect(try draws(SamplingOptions(temperature: 1, topK: 1, seed: 1)) == [0])
        // 0.5 + 0.3 reaches 0.8: top-p 0.8 keeps two, 0.81 three.
        #expect(try draws(SamplingOptions(temperature: 1, topP: 0.79, seed: 1)) == [0, 1])
        #expect(try draws(SamplingOptions(temperature: 1, topP: 0.81, seed: 1)) == [0, 1, 2])
        // min-p 0.5 keeps what is at least half as likely as the best: 0.5 and 0.3.
        #expect(try draws(SamplingOptions(temperature: 1, minP: 0.5, seed: 1)) == [0, 1])
    }

    @Test func repetitionPenaltyDividesPositiveAndMultipliesNegativeLogits() throws {
        var s = try Sampler(SamplingOptions(repetitionPenalty: 1.2))
        #expect(s.next(logits: [2.0, 1.9], context: [0]) == 1)
        #expect(s.next(logits: [2.0, 1.9], context: [5]) == 0)
        #expect(s.next(logits: [-1.0, -1.1], context: [0]) == 1)
        var windowed = try Sampler(SamplingOptions(repetitionPenalty: 1.2, repetitionWindow: 1))
        #expect(windowed.next(logits: [2.0, 1.9], context: [0, 1]) == 0)
    }

    @Test(arguments: [
        (SamplingOptions(temperature: -1), "input: sampling: temperature must be 0 or more, not -1.0"),
        (SamplingOptions(topK: -2), "input: sampling: top-k must be 0 (off) or more, not -2"),
        (SamplingOptions(topP: 0), "input: sampling: top-p must be in (0, 1], not 0.0"),
        (SamplingOptions(minP: 1.5), "input: sampling: min-p must be in [0, 1], not 1.5"),
        (SamplingOptions(repetitionPenalty: 0), "input: sampling: the repetition penalty must be above 0, not 0.0"),
        (SamplingOptions(temperature: .nan), "input: sampling: temperature must be 0 or more, not nan"),
    ])
    func badOptionsAreOneLine(options: SamplingOptions, message: String) {
        #expect(throws: ModelError.badInput(String(message.dropFirst("input: ".count)))) { try Sampler(options) }
    }
}
