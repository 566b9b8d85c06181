/// Turns generated ids into text as they arrive, never emitting part of a character: a
/// byte-level token can end inside a UTF-8 sequence (an emoji often takes two or three
/// tokens), and decoding it alone would print a replacement character that the next token
/// would have completed.
///
/// Each step decodes the ids since the last emitted boundary, together with a few before it
/// so that decoders which look at neighbours (a leading space dropped from the first word)
/// see the same context, and emits what is new once it no longer ends in U+FFFD.
public struct StreamingDetokenizer: Sendable {
    public let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    private var ids: [Int] = []
    private var prefixStart = 0
    private var readStart = 0
    /// The decoded text of ids[prefixStart..<readStart]: what was last emitted, decoded again
    /// only when the boundary moves.
    private var before = ""

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// The text `id` completes: empty while a character is still incomplete.
    public mutating func append(_ id: Int) -> String {
        ids.append(id)
        let now = decoded(from: prefixStart)
        guard now.unicodeScalars.count > before.unicodeScalars.count, now.unicodeScalars.last != "\u{FFFD}" else { return "" }
        return advance(now)
    }

    /// What is still held back at the end of a generation (an incomplete character, written
    /// as the decoder writes invalid bytes).
    public mutating func finish() -> String {
        let now = decoded(from: prefixStart)
        guard now.unicodeScalars.count > before.unicodeScalars.count else { return "" }
        return advance(now)
    }

    private func decoded(from start: Int) -> String {
        tokenizer.decode(Array(ids[start...]), skipSpecialTokens: skipSpecialTokens)
    }

    /// Emits what `now` adds to `before` and moves the boundary to the end.
    private mutating func advance(_ now: String) -> String {
        let text = String(now.unicodeScalars.dropFirst(before.unicodeScalars.count))
        prefixStart = readStart
        readStart = ids.count
        before = decoded(from: prefixStart)
        return text
    }
}
