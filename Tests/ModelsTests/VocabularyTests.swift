import Testing
@testable import Models

/// vocab.txt is read the way HF's load_vocab reads it (Python's universal newlines): one token
/// per line ending in \n, \r\n or \r; an empty line is a token too; a final newline does not
/// add one; the first occurrence of a repeated token keeps its id.
@Suite struct VocabularyTests {
    @Test func linesAndIds() throws {
        let specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"
        let t = try Tokenizer(vocabularyText: specials + "hello\r\nworld\rcafé\n\n##s\nhello\n")
        #expect(t.id(of: "hello") == 5)
        #expect(t.id(of: "world") == 6)
        #expect(t.id(of: "café") == 7)
        #expect(t.id(of: "") == 8)
        #expect(t.id(of: "##s") == 9)
        #expect(t.token(of: 10) == "hello")  // the repeated line keeps its own id for decoding
        #expect(t.encode("hello worlds").ids == [2, 5, 6, 9, 3])
        #expect(t.decode([2, 5, 6, 9, 3]) == "hello worlds")
        let unterminated = try Tokenizer(vocabularyText: specials + "last")
        #expect(unterminated.id(of: "last") == 5 && unterminated.token(of: 6) == nil)
    }

    /// "é" precomposed and "e" + combining acute are one Swift String (canonical equivalence)
    /// but two tokens: the vocabulary must keep both ids apart.
    @Test func canonicallyEquivalentTokensStayApart() throws {
        let specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"
        let t = try Tokenizer(vocabularyText: specials + "caf\u{E9}\ncafe\u{301}\n", config: {
            var c = TokenizerConfig(); c.lowercase = false; c.stripAccents = false; c.stripAccentsGiven = true; return c
        }())
        #expect(t.id(of: "caf\u{E9}") == 5)
        #expect(t.id(of: "cafe\u{301}") == 6)
        #expect(t.encode("caf\u{E9} cafe\u{301}").ids == [2, 5, 6, 3])
    }

    @Test func missingSpecialTokenIsAClearError() {
        #expect(throws: ModelError.self) { try Tokenizer(vocabularyText: "hello\nworld\n") }
    }
}
