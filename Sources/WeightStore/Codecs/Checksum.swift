import CXXHash

/// XXH3-64 (seed 0) from libxxhash: the checksum of every tensor's raw bytes, of the header and
/// of the preamble. Chosen for speed (tens of GB/s, so `verify` is bound by the disk).
public enum Checksum {
    public static func xxh3(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH3_64bits(bytes.baseAddress, bytes.count)
    }

    public static func xxh3(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { xxh3($0) }
    }

    /// Incremental hashing for data that is streamed through the writer in chunks.
    final class Stream {
        private let state: OpaquePointer

        init() {
            state = XXH3_createState()!
            XXH3_64bits_reset(state)
        }

        deinit { XXH3_freeState(state) }

        func update(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count > 0 else { return }
            XXH3_64bits_update(state, bytes.baseAddress, bytes.count)
        }

        var digest: UInt64 { XXH3_64bits_digest(state) }
    }
}
