/// GGUF's K-quant super-blocks (256 values each), which wpack reads by widening to float32: it
/// has no in-place kernels for them. The layouts and the order of the arithmetic follow ggml's
/// reference dequantizers, so the float32 values are the ones llama.cpp itself computes.
public enum KQuant: Sendable, CaseIterable {
    /// 4.5 bits per value: a half d and dmin, 8 sub-blocks of 32 with 6-bit scales and mins.
    case q4_K
    /// 6.5625 bits per value: 16 sub-blocks of 16 with int8 scales, one half d at the end.
    case q6_K

    public static let blockLength = 256

    public var blockBytes: Int {
        switch self {
        case .q4_K: 144
        case .q6_K: 210
        }
    }

    public var name: String {
        switch self {
        case .q4_K: "Q4_K"
        case .q6_K: "Q6_K"
        }
    }

    /// Decodes `blocks` whole super-blocks from `raw` into `out` (256 floats per block).
    public func decode(_ raw: UnsafeRawBufferPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(raw.count >= blocks * blockBytes)
        for b in 0..<blocks {
            let block = UnsafeRawBufferPointer(rebasing: raw[(b * blockBytes)..<((b + 1) * blockBytes)])
            let y = out + b * Self.blockLength
            switch self {
            case .q4_K: Self.decodeQ4K(block, y)
            case .q6_K: Self.decodeQ6K(block, y)
            }
        }
    }

    private static func half(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    /// Scale and minimum of sub-block j: the first four are the low 6 bits of bytes j and j+4;
    /// the last four take 4 bits from byte j+4 and their top 2 bits from the first eight bytes.
    private static func scaleAndMin(_ j: Int, _ s: UnsafeRawBufferPointer) -> (Float, Float) {
        if j < 4 { return (Float(s[j] & 63), Float(s[j + 4] & 63)) }
        let scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4)
        let minimum = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
        return (Float(scale), Float(minimum))
    }

    private static func decodeQ4K(_ x: UnsafeRawBufferPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), dmin = half(x, 2)
        let scales = UnsafeRawBufferPointer(rebasing: x[4..<16])
        let qs = UnsafeRawBufferPointer(rebasing: x[16..<144])
        var out = 0
        for chunk in 0..<4 {
            let (sc1, m1) = scaleAndMin(2 * chunk, scales)
            let (sc2, m2) = scaleAndMin(2 * chunk + 1, scales)
            let d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2
            let q = chunk * 32
            for l in 0..<32 { y[out + l] = d1 * Float(qs[q + l] & 0x0F) - min1 }
            for l in 0..<32 { y[out + 32 + l] = d2 * Float(qs[q + l] >> 4) - min2 }
            out += 64
        }
    }

    private static func decodeQ6K(_ x: UnsafeRawBufferPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 208)
        for half in 0..<2 {
            let ql = 64 * half, qh = 128 + 32 * half, sc = 192 + 8 * half
            let base = 128 * half
            for l in 0..<32 {
                let group = l / 16
                let high = Int(x[qh + l])
                let q1 = Int(x[ql + l] & 0x0F) | ((high & 3) << 4)
                let q2 = Int(x[ql + l + 32] & 0x0F) | (((high >> 2) & 3) << 4)
                let q3 = Int(x[ql + l] >> 4) | (((high >> 4) & 3) << 4)
                let q4 = Int(x[ql + l + 32] >> 4) | (((high >> 6) & 3) << 4)
                func scale(_ i: Int) -> Float { d * Float(Int8(bitPattern: x[sc + group + i])) }
                y[base + l] = scale(0) * Float(q1 - 32)
                y[base + l + 32] = scale(2) * Float(q2 - 32)
                y[base + l + 64] = scale(4) * Float(q3 - 32)
                y[base + l + 96] = scale(6) * Float(q4 - 32)
            }
        }
    }
}
