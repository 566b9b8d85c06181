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

    init(_ entries: [(bytes: [UInt8], value: Int)]) {
        // Build with per-node dictionaries, then flatten breadth-first.
        var children: [[UInt8: Int]] = [[:]]
        var nodeValues: [Int32] = [-1]
        for (bytes, value) in entries {
            var node = 0
            for b in bytes {
                if let next = children[node][b] { node = next } else {
                    children.append([:]); nodeValues.append(-1)
                    children[node][b] = children.count - 1
                    node = children.count - 1
                }
            }
            if nodeValues[node] < 0 { nodeValues[node] = Int32(value) }
        }
        var order = [0], position = [Int](repeating: 0, count: children.count)
        var head = 0
        while head < order.count {
            let n = order[head]; head += 1
            for (_, child) in children[n].sorted(by: { $0.key < $1.key }) { position[child] = order.count; order.append(child) }
        }
        first.reserveCapacity(order.count + 1)
        for n in order {
            first.append(Int32(edgeBytes.count))
            for (b, child) in children[n].sorted(by: { $0.key < $1.key }) {
                edgeBytes.append(b)
                edgeTargets.append(Int32(position[child]))
            }
            values.append(nodeValues[n])
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
