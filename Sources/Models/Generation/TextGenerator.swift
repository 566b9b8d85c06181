/// Generates text with a `TextDecoder`: the prompt in one batched prefill, then one decode
/// step per token through the session's caches, each token chosen by a `Sampler` and turned
/// into text by a `StreamingDetokenizer`.
///
///     let generator = TextGenerator(model: try TextDecoder(store: store))
///     let prompt = try generator.chatPrompt([ChatMessage(role: "user", content: "Hi")])
///     for try await token in try generator.tokens(prompt: prompt) { print(token.text, terminator: "") }
public struct TextGenerator: Sendable {
    public let model: TextDecoder
    /// The model's chat template, parsed once; its error is thrown when a chat prompt needs it,
    /// so a model with a template wpack cannot render still runs plain prompts.
    private let template: Result<ChatTemplate, any Error>?

    public init(model: TextDecoder) {
        self.model = model
        template = model.chatTemplate.map { source in Result { try ChatTemplate(source) } }
    }

    /// A prompt: its ids, and whether they came from the chat template.
    public struct Prompt: Sendable {
        public let ids: [Int]
        public let text: String
    }

    /// Plain text, tokenized with the tokenizer's own special tokens (a BOS where the model
    /// adds one).
    public func prompt(_ text: String) -> Prompt {
        Prompt(ids: model.tokenizer.encode(text).ids, text: text)
    }

    /// Messages rendered by the model's chat template with the assistant's turn opened, then
    /// tokenized without adding special tokens (the template writes them), as transformers'
    /// apply_chat_template does.
    public func chatPrompt(_ messages: [ChatMessage]) throws -> Prompt {
        guard let template else {
            throw ModelError.badConfig("this model has no chat template (a GGUF file's tokenizer.chat_template, a folder's chat_template.jinja or tokenizer_config.json chat_template); give a plain prompt")
        }
        let text = try template.get().render(messages: messages, addGenerationPrompt: true,
                                                   bosToken: model.bosToken, eosToken: model.eosToken)
        return Prompt(ids: model.tokenizer.encode(text, addSpecialTokens: false).ids, text: text)
    }

    /// The tokens as they are generated. Each `next()` runs one forward pass on the calling
    /// task (the first runs the whole prompt).
    public func tokens(prompt: Prompt, options: GenerationOptions = GenerationOptions()) throws -> GeneratedTokens {
        GeneratedTokens(run: try GenerationRun(model: model, prompt: prompt.ids, options: options))
    }

    /// Runs to the end, handing each token to `onToken` as it is generated.
    public func generate(prompt: Prompt, options: GenerationOptions = GenerationOptions(),
                         onToken: (GeneratedToken) throws -> Void = { _ in }) throws -> Generation {
        var run = try GenerationRun(model: model, prompt: prompt.ids, options: options)
        while let token = try run.step() { try onToken(token) }
        return run.result
    }
}

/// The generated tokens as an AsyncSequence. One iteration runs the generation once.
public struct GeneratedTokens: AsyncSequence {
    public typealias Element = GeneratedToken
    let run: GenerationRun

    public struct AsyncIterator: AsyncIteratorProtocol {
        var run: GenerationRun
        public mutating func next() async throws -> GeneratedToken? { try run.step() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(run: run) }
}
