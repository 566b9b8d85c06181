import CZstd

/// The zstd codec: streaming compression for the writer; checked decompression for the store,
/// one-shot into a buffer of the record's exact raw size, or streamed in chunks for verify. A
/// frame is checked against its record before anything is allocated for it, so a 16 KB file
/// claiming 2^45 bytes is refused rather than trusted.
enum Zstd {
    static let defaultLevel = 3
    static var levelRange: ClosedRange<Int> { Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel()) }

    /// Checks a stored frame against its record before anything is allocated for it: exactly
    /// one frame fills the stored bytes, and it declares `rawSize` or, when it declares nothing,
    /// could decode to that many bytes at all. Returns an error message or nil.
    static func check(_ source: UnsafeRawBufferPointer, rawSize: Int) -> String? {
        let frameSize = ZSTD_findFrameCompressedSize(source.baseAddress, source.count)
        if ZSTD_isError(frameSize) != 0 { return "not a complete zstd frame" }
        if frameSize != source.count { return "\(source.count - frameSize) bytes follow the zstd frame" }
        let declared = ZSTD_getFrameContentSize(source.baseAddress, source.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { return "not a zstd frame" }
        if declared != ZSTD_CONTENTSIZE_UNKNOWN {
            return declared == UInt64(rawSize) ? nil : "frame declares \(declared) bytes, record says \(rawSize)"
        }
        let bound = ZSTD_decompressBound(source.baseAddress, source.count)
        if bound == ZSTD_CONTENTSIZE_ERROR { return "not a zstd frame" }
        return bound >= UInt64(rawSize) ? nil : "frame can decode to at most \(bound) bytes, record says \(rawSize)"
    }

    /// Decompresses exactly `into.count` bytes, a frame `check` has passed (the caller checks
    /// it before allocating `destination`); returns an error message or nil on success.
    static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> String? {
        let written = ZSTD_decompress(destination.baseAddress, destination.count,
                                      source.baseAddress, source.count)
        if ZSTD_isError(written) != 0 { return String(cString: ZSTD_getErrorName(written)) }
        if written != destination.count { return "decoded \(written) bytes, record says \(destination.count)" }
        return nil
    }

    /// Decodes in fixed-size chunks handed to `consume`, never holding the whole output: verify
    /// hashes a 4 GiB tensor in a few megabytes of memory. Produces exactly `rawSize` bytes or
    /// returns an error message.
    static func decompressStreaming(_ source: UnsafeRawBufferPointer, rawSize: Int,
                                    consume: (UnsafeRawBufferPointer) -> Void) -> String? {
        if let problem = check(source, rawSize: rawSize) { return problem }
        guard let stream = ZSTD_createDCtx() else { return "cannot create a zstd decoder" }
        defer { ZSTD_freeDCtx(stream) }
        let chunkSize = ZSTD_DStreamOutSize() * 8
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
        defer { chunk.deallocate() }
        var input = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
        var produced = 0
        while true {
            var output = ZSTD_outBuffer(dst: chunk.baseAddress, size: chunkSize, pos: 0)
            let status = ZSTD_decompressStream(stream, &output, &input)
            if ZSTD_isError(status) != 0 { return String(cString: ZSTD_getErrorName(status)) }
            produced += output.pos
            if produced > rawSize { return "decodes to more than the record's \(rawSize) bytes" }
            if output.pos > 0 { consume(UnsafeRawBufferPointer(rebasing: chunk[0..<output.pos])) }
            if status == 0 { break }
            // No progress with input left and the buffer not full: the frame is cut short.
            if input.pos == input.size && output.pos < chunkSize { return "frame is truncated" }
        }
        return produced == rawSize ? nil : "decoded \(produced) bytes, record says \(rawSize)"
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
