import Foundation
import LazyTensor

/// `wpack pack --weights CODING`: which tensors are re-encoded, and their new bytes.
///
/// By default the 2-D float tensors named `...weight` that are not embedding tables: the
/// matrices of linear layers, which a matrix product reads in place in their coding. Embeddings,
/// norms, biases and convolution kernels stay float32 unless a `--convert` pattern names them;
/// a `--keep` pattern keeps a tensor float32 whatever else matches it.
public struct WeightConversion: Sendable {
    public let dtype: DType
    public let keep: [String]
    public let convert: [String]
    /// A tensor whose relative RMS error in `dtype` would exceed this is stored in the next
    /// wider coding that meets it (q8_0, then bfloat16, then float16); nil stores every tensor
    /// in `dtype`. (MiniLM's matrices all land between 8.5% and 9.7% at q4_0, so no one
    /// default separates sensitive tensors from the rest: the user chooses.)
    public let maxRelativeError: Double?

    /// The metadata key holding what converting `name` cost in accuracy.
    public static func metadataKey(_ name: String) -> String { "wpack.conversion:" + name }

    /// `--weights` spellings: bf16, f16, q8, q4 (q4_0), and the dtype names themselves.
    public static func dtype(named name: String) -> DType? {
        switch name.lowercased() {
        case "bf16", "bfloat16": .bfloat16
        case "f16", "fp16", "float16", "half": .float16
        case "q8", "q8_0": .q8_0
        case "q4", "q4_0": .q4_0
        case "q4_1": .q4_1
        default: nil
        }
    }

    public init(dtype: DType, keep: [String] = [], convert: [String] = [], maxRelativeError: Double? = nil) {
        self.dtype = dtype
        self.keep = keep
        self.convert = convert
        self.maxRelativeError = maxRelativeError
    }

    public struct Converted: Sendable {
        public var tensor: InputTensor
        public var error: Quantization.ConversionError
        public var originalBytes: Int
    }

    /// Whether `tensor` is re-encoded: named by --convert, or a linear layer's matrix by
    /// default; never when named by --keep. nil and a reason when asked for but impossible.
    public func selects(_ tensor: InputTensor) throws -> Bool {
        let name = tensor.name
        if keep.contains(where: { Glob.matches($0, name) }) { return false }
        let isFloat = tensor.dtype.isFloatingPoint && !tensor.dtype.isBlockQuantized
        if convert.contains(where: { Glob.matches($0, name) }) {
            guard isFloat else { throw InterchangeError("pack", "--convert names '\(name)', a \(tensor.dtype) tensor: only float tensors are converted") }
            guard dtype.storedBytes(shape: tensor.shape) != nil else {
                throw InterchangeError("pack", "--convert names '\(name)' of shape \(tensor.shape): \(dtype) needs a last dimension that is a multiple of \(dtype.blockLength)")
            }
            return true
        }
        let lower = name.lowercased()
        return isFloat && tensor.shape.count == 2 && lower.hasSuffix("weight") && !lower.contains("embed")
            && dtype.storedBytes(shape: tensor.shape) != nil && tensor.shape.allSatisfy { $0 > 0 }
    }

    /// The tensor in `dtype`: its values read (widened to float32 first if need be),
    /// re-encoded in memory, and the error measured.
    public func convert(_ tensor: InputTensor) throws -> Converted {
        let count = tensor.shape.reduce(1, *)
        var raw = [UInt8]()
        raw.reserveCapacity(count * tensor.dtype.byteSize)
        try tensor.source.produce { chunk in raw.append(contentsOf: chunk) }
        guard raw.count == count * tensor.dtype.byteSize else {
            throw InterchangeError("pack", "tensor '\(tensor.name)' gave \(raw.count) bytes, its shape needs \(count * tensor.dtype.byteSize)")
        }
        var values = [Float](repeating: 0, count: count)
        raw.withUnsafeBytes { bytes in
            values.withUnsafeMutableBufferPointer { out in
                if count > 0 { Widening.toFloat32(bytes, dtype: tensor.dtype, count: count, into: out.baseAddress!) }
            }
        }
        var encoded: (bytes: [UInt8], error: Quantization.ConversionError)
        var chosen = dtype
        do {
            encoded = try Quantization.encode(values, shape: tensor.shape, as: dtype)
            if let limit = maxRelativeError {
                for wider in [DType.q8_0, .bfloat16, .float16] where encoded.error.relativeRMS > limit && wider.byteSize * dtype.blockLength > dtype.byteSize * wider.blockLength {
                    encoded = try Quantization.encode(values, shape: tensor.shape, as: wider)
                    chosen = wider
                }
            }
        } catch {
            throw InterchangeError("pack", "tensor '\(tensor.name)' cannot be stored as \(dtype): \(error)")
        }
        var out = tensor
        out.dtype = chosen
        out.source = .bytes(encoded.bytes)
        return Converted(tensor: out, error: encoded.error, originalBytes: count * 4)
    }
}

/// Shell-style patterns for tensor names: `*` any run of characters (dots included), `?` one
/// character. The whole name must match.
public enum Glob {
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern.unicodeScalars), s = Array(name.unicodeScalars)
        var pi = 0, si = 0, star = -1, mark = 0
        while si < s.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == s[si]) {
                pi += 1; si += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi; mark = si; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; si = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
