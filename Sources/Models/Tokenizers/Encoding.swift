/// The ids a tokenizer produces for one input (a text, or a pair of texts), with what a model
/// and a reader need beside them.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int]
    /// 0 for the first text and its special tokens, 1 for the second (as the template says).
    public var typeIds: [Int]
    /// 1 where the token was added by the post-processor ([CLS], [SEP], <s>, ...).
    public var specialTokensMask: [Int]

    public init(ids: [Int], typeIds: [Int]? = nil, specialTokensMask: [Int]? = nil) {
        self.ids = ids
        self.typeIds = typeIds ?? [Int](repeating: 0, count: ids.count)
        self.specialTokensMask = specialTokensMask ?? [Int](repeating: 0, count: ids.count)
    }

    public var count: Int { ids.count }

    static func + (a: Encoding, b: Encoding) -> Encoding {
        Encoding(ids: a.ids + b.ids, typeIds: a.typeIds + b.typeIds, specialTokensMask: a.specialTokensMask + b.specialTokensMask)
    }

    func withType(_ type: Int) -> Encoding {
        Encoding(ids: ids, typeIds: [Int](repeating: type, count: ids.count), specialTokensMask: specialTokensMask)
    }

    static func special(_ ids: [Int], type: Int) -> Encoding {
        Encoding(ids: ids, typeIds: [Int](repeating: type, count: ids.count), specialTokensMask: [Int](repeating: 1, count: ids.count))
    }
}
