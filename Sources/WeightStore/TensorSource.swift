import LazyTensor

/// Where a tensor's raw bytes come from when the writer asks for them. Sources stream in
/// chunks, so a source backed by a mapped input file lets a model larger than memory be packed.
public struct TensorSource: Sendable {
    /// Calls `emit` with consecutive chunks of the tensor's raw bytes (little-endian, C order).
    public let produce: @Sendable (_ emit: (UnsafeRawBufferPointer) throws -> Void) throws -> Void

    public init(_ produce: @escaping @Sendable (_ emit: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) {
        self.produce = produce
    }

    /// Bytes held in memory.
    public static func bytes(_ bytes: [UInt8]) -> TensorSource {
        TensorSource { emit in try bytes.withUnsafeBytes { try emit($0) } }
    }

    /// The elements of a float32 tensor, in row-major order (strided views are gathered).
    public static func tensor(_ tensor: Tensor) -> TensorSource {
        TensorSource { emit in
            if tensor.isContiguous {
                try withExtendedLifetime(tensor.storage) {
                    try emit(UnsafeRawBufferPointer(start: tensor.baseAddress, count: tensor.scalarCount * 4))
                }
            } else {
                try tensor.scalars.withUnsafeBytes { try emit($0) }
            }
        }
    }

    /// A byte range of a mapped file, emitted in 4 MiB chunks straight from the mapping.
    public static func mapped(_ file: MappedFile, offset: Int, count: Int) -> TensorSource {
        TensorSource { emit in
            let chunk = 4 << 20
            var start = offset
            while start < offset + count {
                let end = min(start + chunk, offset + count)
                try withExtendedLifetime(file) { try emit(UnsafeRawBufferPointer(rebasing: file.bytes[start..<end])) }
                start = end
            }
        }
    }

    /// Converts `count` elements through `convert`, which fills a chunk of output bytes from an
    /// element range; used for widening, byte swapping and Fortran-order gathering.
    public static func converted(
        count: Int, outputElementSize: Int,
        _ convert: @escaping @Sendable (_ range: Range<Int>, _ out: UnsafeMutableRawBufferPointer) -> Void
    ) -> TensorSource {
        TensorSource { emit in
            let perChunk = max(1, (1 << 20) / max(outputElementSize, 1))
            var scratch = [UInt8](repeating: 0, count: min(count, perChunk) * outputElementSize)
            var start = 0
            while start < count {
                let end = min(start + perChunk, count)
                let bytes = (end - start) * outputElementSize
                try scratch.withUnsafeMutableBytes { out in
                    let slice = UnsafeMutableRawBufferPointer(rebasing: out[0..<bytes])
                    convert(start..<end, slice)
                    try emit(UnsafeRawBufferPointer(slice))
                }
                start = end
            }
        }
    }
}
