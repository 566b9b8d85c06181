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

extension InputTensor {
    /// Reads the tensor into memory: int32 and int64 arrays as integer tensors (token ids,
    /// indices), every float type as float32. Other types are refused.
    public func load() throws -> Tensor {
        guard dtype == .int32 || dtype == .int64 else { return try loadFloat32() }
        let count = shape.reduce(1, *)
        let size = dtype.byteSize
        let storage = Storage(allocatingByteCount: count * size)
        var written = 0
        try source.produce { chunk in
            guard written + chunk.count <= count * size else { throw InterchangeError("array '\(name)'", "holds more data than its shape") }
            if let base = chunk.baseAddress { (storage.baseAddress + written).copyMemory(from: base, byteCount: chunk.count) }
            written += chunk.count
        }
        guard written == count * size else { throw InterchangeError("array '\(name)'", "holds less data than its shape") }
        Stats.recordCopy(bytes: count * size, reason: .userRequest)
        return Tensor(storage: storage, shape: shape, dtype: dtype)
    }
}

public enum ArrayFile {
    /// The single array of a .npy file: float types as float32, int32 and int64 as integers.
    public static func readNpy(path: String) throws -> Tensor {
        let bundle = try Npy.read(path: path, name: "array", policy: .widen)
        return try bundle.tensors[0].load()
    }

    /// Writes a tensor (float32, int32 or int64) as a .npy file (version 1.0, C order), atomically.
    public static func writeNpy(_ tensor: Tensor, to path: String) throws {
        let t = tensor.materialized()
        let out = try FileOutput(path: path)
        do {
            try out.write(try Npy.header(dtype: t.dtype, shape: t.shape))
            try withExtendedLifetime(t) {
                let start = t.storage.baseAddress + t.offset * t.dtype.byteSize
                try out.write(UnsafeRawBufferPointer(start: start, count: t.scalarCount * t.dtype.byteSize))
            }
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
    }
}
