import LazyTensor
import WeightStore

/// The ...ForSequenceClassification head of each encoder family, over the first token's
/// hidden state. The families differ in names and in the activation between the two layers.
struct ClassificationHead: Sendable {
    let dense: Linear?
    let activation: Dense.Activation
    let output: Linear

    init(store: WeightStore, config: EncoderConfig, prefix: String, labels: Int) throws {
        let h = config.hiddenSize
        func linear(_ name: String, _ out: Int) throws -> Linear {
            try Linear(store: store, prefix: name, inFeatures: h, outFeatures: out, requireBias: true)
        }
        switch config.architecture {
        case .bert:
            // BertForSequenceClassification: the pooler (dense + tanh) and the classifier.
            dense = try linear(prefix + "pooler.dense", h)
            activation = .tanh
            output = try linear("classifier", labels)
        case .distilbert:
            dense = try linear("pre_classifier", h)
            activation = .relu
            output = try linear("classifier", labels)
        case .electra:
            dense = try linear("classifier.dense", h)
            activation = .gelu
            output = try linear("classifier.out_proj", labels)
        case .roberta, .xlmRoberta, .camembert, .mpnet:
            dense = try linear("classifier.dense", h)
            activation = .tanh
            output = try linear("classifier.out_proj", labels)
        }
    }

    /// hidden: [B, T, H] -> logits [B, labels].
    func callAsFunction(_ hidden: Tensor) -> Tensor {
        var x = hidden.sliced(axis: 1, range: 0..<1).squeezed(axis: 1)
        if let dense { x = activation.apply(dense(x)) }
        return output(x)
    }
}
