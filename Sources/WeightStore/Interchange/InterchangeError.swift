import LazyTensor
/// A problem with an input or output file of another format (.npy, .npz, .safetensors, a model
/// folder). Each names the file and what is wrong with it in one line.
public struct InterchangeError: Error, Equatable, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String

    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    /// One line: control characters from file contents are escaped.
    public var description: String { DisplayText.escaped("\(path): \(reason)", backslash: false) }
}

/// One tensor found in an input file, ready to be declared to a `WeightStoreWriter`.
public struct InputTensor: Sendable {
    public var name: String
    /// The dtype it will be stored as (after any widening).
    public var dtype: DType
    /// The dtype it has in the source file.
    public var sourceDType: DType
    public var shape: [Int]
    public var source: TensorSource

    public var byteCount: Int { dtype.storedBytes(shape: shape) ?? 0 }
}

/// Everything read from one input: tensors plus metadata (safetensors' `__metadata__`, a model
/// folder's config files).
public struct InputBundle: Sendable {
    public var tensors: [InputTensor] = []
    public var metadata: [(String, MetadataValue)] = []
    /// What the reader left out and why (a binary file in a model folder, say), for the pack
    /// summary.
    public var notes: [String] = []
    public init() {}
}

/// How narrow float types are stored.
public enum HalfPolicy: Sendable {
    /// float16 and bfloat16 become float32 at pack time, so they map with zero copies.
    case widen
    /// Kept as stored (half the bytes); widened on every access as a counted copy.
    case keep
}
