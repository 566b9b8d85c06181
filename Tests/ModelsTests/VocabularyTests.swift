import Testing
@testable import Models

/// vocab.txt is read the way HF's load_vocab reads it (Python's universal newlines): one token
/// per line ending in \n, \r\n or \r; an empty line is a token too; a final newline does not
/// add one; the first occurrence of a repeated token keeps its id.
@Suite struct VocabularyTests {
    @Test func linesAndIds() throws {
        let specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"
        let t = try WordPieceTokenizer(vocabularyText: specials + "hello\r\nworld\rcafé\n\n##s\nhello\n")
        #expect(t.vocabulary["hello"] == 5)
        #expect(t.vocabulary["world"] == 6)
        #expect(t.vocabulary["café"] == 7)
        #expect(t.vocabulary[""] == 8)
        #expect(t.vocabulary["##s"] == 9)
        #expect(t.vocabulary.count == 10)
        #expect(t.encode("hello worlds") == [t.cls, 5, 6, 9, t.sep])
        let unterminated = try WordPieceTokenizer(vocabularyText: specials + "last")
        #expect(unterminated.vocabulary["last"] == 5 && unterminated.vocabulary.count == 6)
    }

    @Test func missingSpecialTokenIsAClearError() {
        #expect(throws: ModelError.self) { try WordPieceTokenizer(vocabularyText: "hello\nworld\n") }
    }
}
