import LazyTensor

extension InputTensor {
    /// Reads the tensor into a new float32 block (float16, bfloat16 and float64 converted;
    /// integers refused). Counted as allocated and as copied (reason `.userRequest`): the
    /// caller asked for the array in memory.
    public func loadFloat32() throws -> Tensor {
        guard sourceDType.isFloatingPoint else {
            throw InterchangeError("array '\(name)'", "holds \(sourceDType.name), not floating-point data")
        }
        let count = shape.reduce(1, *)
        let storage = Storage(allocatingByteCount: count * 4)
        let out = storage.baseAddress.assumingMemoryBound(to: Float.self)
        var written = 0
        let size = dtype.byteSize
        try source.produce { chunk in
            let n = chunk.count / size
            guard written + n <= count else { throw InterchangeError("array '\(name)'", "holds more data than its shape") }
            Widening.toFloat32(chunk, dtype: dtype, count: n, into: out + written)
            written += n
        }
        guard written == count else { throw InterchangeError("array '\(name)'", "holds less data than its shape") }
        Stats.recordCopy(bytes: count * 4, reason: .userRequest)
        return Tensor(storage: storage, shape: shape)
    }
}

public enum ArrayFile {
    /// The single array of a .npy file as float32.
    public static func readNpy(path: String) throws -> Tensor {
        let bundle = try Npy.read(path: path, name: "array", policy: .widen)
        return try bundle.tensors[0].loadFloat32()
    }

    /// Writes a float32 tensor as a .npy file (version 1.0, C order), atomically.
    public static func writeNpy(_ tensor: Tensor, to path: String) throws {
        let t = tensor.materialized()
        let out = try FileOutput(path: path)
        do {
            try out.write(try Npy.header(dtype: .float32, shape: t.shape))
            try withExtendedLifetime(t) {
                try out.write(UnsafeRawBufferPointer(start: t.baseAddress, count: t.scalarCount * 4))
            }
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
    }
}
