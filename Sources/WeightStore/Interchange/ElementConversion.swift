import LazyTensor
/// Builds the streaming source that turns an input array's bytes into a .wpk tensor's raw
/// bytes: little-endian, C order, and float32 where a half type is widened. The input stays
/// where it is (usually a mapped file) and is converted a chunk at a time.
enum ElementConversion {
    /// The first element of a bool array whose byte is neither 0 nor 1, with that byte: .wpk
    /// (and safetensors) define bool as exactly those two values.
    static func invalidBool(in data: UnsafeRawBufferPointer) -> (index: Int, value: UInt8)? {
        data.firstIndex(where: { $0 > 1 }).map { ($0, data[$0]) }
    }

    static func source(
        bytes: UnsafeRawBufferPointer, owner: AnyObject & Sendable, from input: DType, to output: DType,
        shape: [Int], bigEndian: Bool, fortranOrder: Bool
    ) -> TensorSource {
        let count = shape.reduce(1, *)
        // The common case streams straight from the mapping with no conversion at all.
        if input == output, !bigEndian || input.byteSize == 1, !fortranOrder || shape.count <= 1 {
            let base = UInt(bitPattern: bytes.baseAddress)
            let byteCount = input.storedBytes(shape: shape) ?? count * input.byteSize
            return TensorSource { emit in
                try withExtendedLifetime(owner) {
                    let chunk = 4 << 20
                    var start = 0
                    while start < byteCount {
                        let end = min(start + chunk, byteCount)
                        try emit(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: base)! + start, count: end - start))
                        start = end
                    }
                }
            }
        }
        let inSize = input.byteSize, outSize = output.byteSize
        let base = UInt(bitPattern: bytes.baseAddress)
        // For Fortran order, output element i (C order) lives at the position whose index is
        // read with reversed strides.
        let fortranStrides: [Int] = {
            var strides = [Int](repeating: 1, count: shape.count)
            var running = 1
            for axis in shape.indices { strides[axis] = running; running *= max(shape[axis], 1) }
            return strides
        }()
        return TensorSource.converted(count: count, outputElementSize: outSize) { range, out in
            withExtendedLifetime(owner) {
                let src = UnsafeRawPointer(bitPattern: base)!
                var index = cIndex(of: range.lowerBound, shape: shape)
                for (k, i) in range.enumerated() {
                    var position = i
                    if fortranOrder && shape.count > 1 {
                        position = 0
                        for axis in shape.indices { position &+= index[axis] &* fortranStrides[axis] }
                        increment(&index, shape: shape)
                    }
                    var element: (UInt64, UInt64) = (0, 0)
                    withUnsafeMutableBytes(of: &element) { e in
                        e.copyMemory(from: UnsafeRawBufferPointer(start: src + position &* inSize, count: inSize))
                        if bigEndian { e[0..<inSize].reverse() }
                    }
                    let dst = out.baseAddress! + k &* outSize
                    if input == output {
                        withUnsafeBytes(of: element) { dst.copyMemory(from: $0.baseAddress!, byteCount: outSize) }
                    } else {
                        let value: Float
                        switch input {
                        case .float16: value = Float(Float16(bitPattern: UInt16(truncatingIfNeeded: element.0)))
                        case .bfloat16: value = Float(bitPattern: UInt32(truncatingIfNeeded: element.0) << 16)
                        default: preconditionFailure("no conversion from \(input) to \(output)")
                        }
                        dst.storeBytes(of: value.bitPattern.littleEndian, as: UInt32.self)
                    }
                }
            }
        }
    }

    private static func cIndex(of flat: Int, shape: [Int]) -> [Int] {
        var index = [Int](repeating: 0, count: shape.count)
        var rest = flat
        for axis in shape.indices.reversed() where shape[axis] > 0 {
            index[axis] = rest % shape[axis]
            rest /= shape[axis]
        }
        return index
    }

    private static func increment(_ index: inout [Int], shape: [Int]) {
        var axis = shape.count - 1
        while axis >= 0 {
            index[axis] += 1
            if index[axis] < shape[axis] { return }
            index[axis] = 0
            axis -= 1
        }
    }

    /// The stored dtype for an input dtype under a half policy.
    static func storedType(for input: DType, policy: HalfPolicy) -> DType {
        (input == .float16 || input == .bfloat16) && policy == .widen ? .float32 : input
    }
}
