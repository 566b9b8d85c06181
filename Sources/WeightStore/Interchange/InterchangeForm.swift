import LazyTensor

/// How `wpack unpack` writes a tensor to .safetensors or .npz: as stored, byte for byte, except
/// the block-quantized types, which neither format has: those are written as the float32
/// values their blocks decode to.
extension TensorInfo {
    /// The dtype the tensor is written as.
    var interchangeDType: DType? { dtype.map { $0.isBlockQuantized ? .float32 : $0 } }
    /// Its bytes there.
    var interchangeBytes: Int { dtype?.isBlockQuantized == true ? elementCount * 4 : rawBytes }
}

extension WeightStore {
    func withInterchangeBytes<R>(_ info: TensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard info.dtype?.isBlockQuantized == true else { return try withRawBytes(info.name, body) }
        let values = try tensor(info.name).scalars
        return try values.withUnsafeBytes(body)
    }
}
