/// How a tensor's bytes are stored.
public enum Codec: UInt8, Sendable, CustomStringConvertible {
    case none = 0
    case zstd = 1

    public var description: String { self == .none ? "none" : "zstd" }
}
