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

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// The text `id` completes: empty while a character is still incomplete.
    public mutating func append(_ id: Int) -> String {
        ids.append(id)
        let before = tokenizer.decode(Array(ids[prefixStart..<readStart]), skipSpecialTokens: skipSpecialTokens)
        let now = tokenizer.decode(Array(ids[prefixStart...]), skipSpecialTokens: skipSpecialTokens)
        guard now.unicodeScalars.count > before.unicodeScalars.count, now.unicodeScalars.last != "\u{FFFD}" else { return "" }
        let text = String(now.unicodeScalars.dropFirst(before.unicodeScalars.count))
        prefixStart = readStart
        readStart = ids.count
        return text
    }

    /// What is still held back at the end of a generation (an incomplete character, written
    /// as the decoder writes invalid bytes).
    public mutating func finish() -> String {
        let before = tokenizer.decode(Array(ids[prefixStart..<readStart]), skipSpecialTokens: skipSpecialTokens)
        let now = tokenizer.decode(Array(ids[prefixStart...]), skipSpecialTokens: skipSpecialTokens)
        prefixStart = ids.count
        readStart = ids.count
        guard now.unicodeScalars.count > before.unicodeScalars.count else { return "" }
        return String(now.unicodeScalars.dropFirst(before.unicodeScalars.count))
    }
}
