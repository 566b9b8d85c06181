/// Groups inputs for batched forward passes the way embedding servers do: sorted by length,
/// longest first (ties in input order), then cut into runs of at most `maxTexts` inputs and
/// `maxTokens` tokens counted as the first (longest) length times the count; an input longer
/// than the budget goes alone. Returns indices into `lengths`, one array per batch.
enum LengthBatches {
    static func plan(_ lengths: [Int], maxTexts: Int, maxTokens: Int) -> [[Int]] {
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        var out: [[Int]] = []
        var start = 0
        while start < order.count {
            let longest = Swift.max(lengths[order[start]], 1)
            let end = Swift.min(order.count, start + Swift.max(1, Swift.min(maxTexts, maxTokens / longest)))
            out.append(Array(order[start..<end]))
            start = end
        }
        return out
    }
}
