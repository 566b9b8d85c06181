/// An n-dimensional float32 array: a view (element offset, shape, strides in elements) into a
/// shared `Storage`.
///
/// Views are values and cost nothing to make; the storage is shared by reference.
/// Strides are in elements; 0 means a broadcast axis, negative strides walk backwards.
public struct Tensor: Sendable {
    public let storage: Storage
    public let offset: Int
    public let shape: [Int]
    public let strides: [Int]

    /// Largest rank the library supports (and the .wpk format stores).
    public static let maxRank = 8

    /// A view into existing storage. The caller guarantees every index lies inside it.
    public init(storage: Storage, offset: Int = 0, shape: [Int], strides: [Int]? = nil) {
        precondition(shape.count <= Tensor.maxRank, "rank \(shape.count) exceeds \(Tensor.maxRank)")
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.strides = strides ?? Tensor.contiguousStrides(for: shape)
        precondition(self.strides.count == shape.count, "strides and shape differ in rank")
    }

    /// A new contiguous tensor holding a copy of `scalars` (counted as a user-requested copy).
    public init(shape: [Int], scalars: [Float]) {
        let count = shape.reduce(1, *)
        precondition(count == scalars.count,
                     "shape \(shape) holds \(count) scalars, \(scalars.count) given")
        let storage = Storage(allocatingByteCount: count * MemoryLayout<Float>.stride)
        scalars.withUnsafeBytes { storage.baseAddress.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        Stats.recordCopy(bytes: count * MemoryLayout<Float>.stride, reason: .userRequest)
        self.init(storage: storage, shape: shape)
    }

    public static func zeros(shape: [Int]) -> Tensor { full(shape: shape, value: 0) }
    public static func ones(shape: [Int]) -> Tensor { full(shape: shape, value: 1) }
    public static func full(shape: [Int], value: Float) -> Tensor {
        let count = shape.reduce(1, *)
        let storage = Storage(allocatingByteCount: count * MemoryLayout<Float>.stride)
        storage.baseAddress.initializeMemory(as: Float.self, repeating: value, count: count)
        return Tensor(storage: storage, shape: shape)
    }

    public var rank: Int { shape.count }
    public var scalarCount: Int { shape.reduce(1, *) }

    public static func contiguousStrides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in shape.indices.reversed() {
            strides[axis] = running
            running *= max(shape[axis], 1)
        }
        return strides
    }

    /// Row-major and gap-free: the layout every kernel can consume directly.
    public var isContiguous: Bool {
        var expected = 1
        for axis in shape.indices.reversed() where shape[axis] != 1 {
            if strides[axis] != expected { return scalarCount == 0 }
            expected *= shape[axis]
        }
        return true
    }

    /// Whether both views read the same underlying buffer (mapped file region or heap block).
    public func sharesStorage(with other: Tensor) -> Bool { storage === other.storage }

    /// Address of the element at index 0 (offset applied).
    public var baseAddress: UnsafePointer<Float> {
        UnsafePointer(storage.baseAddress.assumingMemoryBound(to: Float.self) + offset)
    }

    /// The elements in row-major order. Reading them is the caller's copy, not the library's.
    public var scalars: [Float] {
        let count = scalarCount
        if count == 0 { return [] }
        return withExtendedLifetime(storage) {
            let base = baseAddress
            if isContiguous { return Array(UnsafeBufferPointer(start: base, count: count)) }
            var out = [Float](); out.reserveCapacity(count)
            var index = [Int](repeating: 0, count: rank)
            for _ in 0..<count {
                var position = 0
                for axis in 0..<rank { position &+= index[axis] &* strides[axis] }
                out.append(base[position])
                var axis = rank - 1
                while axis >= 0 {
                    index[axis] += 1
                    if index[axis] < shape[axis] { break }
                    index[axis] = 0; axis -= 1
                }
            }
            return out
        }
    }
}
