import CZstd

/// The zstd codec: streaming compression for the writer, one-shot checked decompression for the
/// store (a tensor's raw size is known from its record, so the output buffer is exact and a
/// frame that claims more is rejected rather than trusted).
enum Zstd {
    static let defaultLevel = 3
    static var levelRange: ClosedRange<Int> { Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel()) }

    /// Decompresses exactly `into.count` bytes; returns an error message or nil on success.
    static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> String? {
        let declared = ZSTD_getFrameContentSize(source.baseAddress, source.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { return "not a zstd frame" }
        if declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != UInt64(destination.count) {
            return "frame declares \(declared) bytes, record says \(destination.count)"
        }
        let written = ZSTD_decompress(destination.baseAddress, destination.count,
                                      source.baseAddress, source.count)
        if ZSTD_isError(written) != 0 { return String(cString: ZSTD_getErrorName(written)) }
        if written != destination.count { return "decoded \(written) bytes, record says \(destination.count)" }
        return nil
    }

    /// A streaming compressor: feed raw chunks, get compressed chunks through `emit`.
    final class Compressor {
        private let context: OpaquePointer
        private var output: [UInt8]

        init(level: Int, rawSize: Int) throws {
            context = ZSTD_createCCtx()!
            output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
            try check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level)))
            try check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 0))
            try check(ZSTD_CCtx_setPledgedSrcSize(context, UInt64(rawSize)))
        }

        deinit { ZSTD_freeCCtx(context) }

        private func check(_ code: Int) throws {
            if ZSTD_isError(code) != 0 {
                throw WeightStoreError.compressionFailed(String(cString: ZSTD_getErrorName(code)))
            }
        }

        func compress(_ chunk: UnsafeRawBufferPointer, end: Bool,
                      emit: (UnsafeRawBufferPointer) throws -> Void) throws {
            var input = ZSTD_inBuffer(src: chunk.baseAddress, size: chunk.count, pos: 0)
            let mode = end ? ZSTD_e_end : ZSTD_e_continue
            while true {
                var remaining = 0
                var produced = 0
                let failure: Int? = output.withUnsafeMutableBytes { out in
                    var buffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                    remaining = ZSTD_compressStream2(context, &buffer, &input, mode)
                    produced = buffer.pos
                    return ZSTD_isError(remaining) != 0 ? remaining : nil
                }
                if let failure { try check(failure) }
                if produced > 0 {
                    try output.withUnsafeBytes { (out) throws in
                        try emit(UnsafeRawBufferPointer(rebasing: out[0..<produced]))
                    }
                }
                let done = end ? remaining == 0 : input.pos == input.size
                if done { break }
            }
        }
    }
}
