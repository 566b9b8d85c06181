/// A trie over the UTF-8 bytes of a vocabulary, for longest-prefix lookups without building a
/// String per candidate. Keys compare byte for byte: Swift's String equality is canonical
/// equivalence, under which "é" and "e\u{301}" would be one token, and the tokenizers library
/// keeps them apart.
struct ByteTrie: Sendable {
    // Node n's children are edges[first[n] ..< first[n + 1]], sorted by byte.
    private var first: [Int32] = []
    private var edgeBytes: [UInt8] = []
    private var edgeTargets: [Int32] = []
    /// The value stored at each node, or -1.
    private var values: [Int32] = []

    /// The first entry of a repeated key keeps it. Built breadth-first, each node being the
    /// run of keys that share its prefix, split by their next byte with a counting sort (an
    /// MSD radix sort folded into the construction): no per-node dictionary and no comparison
    /// sort, since a tokenizer's vocabulary is built on every cold start.
    init(_ entries: [(bytes: [UInt8], value: Int)]) {
        self.init(keys: entries.lazy.map(\.bytes), values: entries.map(\.value))
    }

    /// `keys[i]` (a String's utf8, an array) holds `values[i]`.
    init<Keys: Sequence>(keys: Keys, values ids: [Int]) where Keys.Element: Sequence, Keys.Element.Element == UInt8 {
        var blob: [UInt8] = [], offsets: [Int] = [], lengths: [Int] = []
        offsets.reserveCapacity(ids.count)
        lengths.reserveCapacity(ids.count)
        for key in keys {
            offsets.append(blob.count)
            blob.append(contentsOf: key)
            lengths.append(blob.count - offsets[offsets.count - 1])
        }
        precondition(offsets.count == ids.count, "ByteTrie: as many values as keys")
        var order = Array(ids.indices), scratch = order
        var counts = [Int](repeating: 0, count: 256)
        // Each queued node: its run order[lo ..< hi] of keys sharing their first `depth` bytes,
        // in input order.
        var queue: [(lo: Int, hi: Int, depth: Int)] = [(0, order.count, 0)]
        var present: [UInt8] = []
        present.reserveCapacity(256)
        var head = 0
        while head < queue.count {
            let (lo, hi, depth) = queue[head]
            head += 1
            first.append(Int32(edgeBytes.count))
            // Keys that end here give the value (the earliest); the rest go on by next byte.
            var value: Int32 = -1, rest = 0
            present.removeAll(keepingCapacity: true)
            for k in lo..<hi {
                let key = order[k]
                if lengths[key] == depth {
                    if value < 0 { value = Int32(ids[key]) }
                    continue
                }
                let b = Int(blob[offsets[key] + depth])
                if counts[b] == 0 { present.append(UInt8(b)) }
                counts[b] += 1
                scratch[lo + rest] = key
                rest += 1
            }
            values.append(value)
            if present.count > 1 { present.sort() }
            var start = lo
            for b in present {
                let n = counts[Int(b)]
                counts[Int(b)] = start  // becomes the write position
                edgeBytes.append(b)
                edgeTargets.append(Int32(queue.count))
                queue.append((start, start + n, depth + 1))
                start += n
            }
            for k in lo..<(lo + rest) {
                let key = scratch[k]
                let b = Int(blob[offsets[key] + depth])
                order[counts[b]] = key
                counts[b] += 1
            }
            for b in present { counts[Int(b)] = 0 }
        }
        first.append(Int32(edgeBytes.count))
    }

    @inline(__always)
    func child(_ node: Int, _ byte: UInt8) -> Int? {
        var low = Int(first[node]), high = Int(first[node + 1])
        while low < high {
            let mid = (low + high) >> 1
            let b = edgeBytes[mid]
            if b == byte { return Int(edgeTargets[mid]) }
            if b < byte { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    /// The node reached from `node` by `bytes`, if any.
    func walk(_ bytes: some Sequence<UInt8>, from node: Int = 0) -> Int? {
        var n = node
        for b in bytes { guard let next = child(n, b) else { return nil }; n = next }
        return n
    }

    @inline(__always)
    func value(at node: Int) -> Int? { values[node] >= 0 ? Int(values[node]) : nil }

    func lookup(_ bytes: some Sequence<UInt8>) -> Int? { walk(bytes).flatMap(value(at:)) }

    /// Every key that is a prefix of bytes[start...], shortest first: (its value, its end).
    func forEachPrefix(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, _ body: (Int, Int) -> Void) {
        var node = 0
        var i = start
        while i < bytes.count, let next = child(node, bytes[i]) {
            node = next
            i += 1
            if let v = value(at: node) { body(v, i) }
        }
    }

    /// The longest key that is a prefix of bytes[start...]: (its value, its end).
    func longestPrefix(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, root: Int = 0) -> (value: Int, end: Int)? {
        var node = root, best: (Int, Int)?
        var i = start
        while i < bytes.count, let next = child(node, bytes[i]) {
            node = next
            i += 1
            if let v = value(at: node) { best = (v, i) }
        }
        return best
    }
}

extension Array where Element == UInt32 {
    /// The UTF-8 bytes of these code points.
    var utf8Bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for c in self {
            switch c {
            case ..<0x80: out.append(UInt8(c))
            case ..<0x800: out += [UInt8(0xC0 | c >> 6), UInt8(0x80 | c & 0x3F)]
            case ..<0x10000: out += [UInt8(0xE0 | c >> 12), UInt8(0x80 | (c >> 6) & 0x3F), UInt8(0x80 | c & 0x3F)]
            default: out += [UInt8(0xF0 | c >> 18), UInt8(0x80 | (c >> 12) & 0x3F), UInt8(0x80 | (c >> 6) & 0x3F), UInt8(0x80 | c & 0x3F)]
            }
        }
        return out
    }

    var string: String {
        var s = String.UnicodeScalarView()
        for c in self { if let u = Unicode.Scalar(c) { s.append(u) } }
        return String(s)
    }
}

extension String {
    var codePoints: [UInt32] { unicodeScalars.map(\.value) }
}
