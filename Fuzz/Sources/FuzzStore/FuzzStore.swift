import Foundation
import LazyTensor
import WeightStore

// One libFuzzer input is a .wpk file (or a GGUF file, read by the import reader). Before it is opened the harness repairs what a random
// mutation almost never gets right and every reader checks first: the preamble's and footer's
// file size and the header and preamble checksums. Coverage then reaches the rules behind them
// (counts, offsets, names, layout, metadata) and tensor access. Any crash, trap or sanitizer
// report is a finding; every refusal must be a WeightStoreError with a one-line description.

/// The input is written to one memory file, reopened by path for each run (no disk traffic).
nonisolated(unsafe) private var memoryFile: Int32 = -1

private func put<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
}

private func read<T: FixedWidthInteger>(_: T.Type, at offset: Int, in bytes: [UInt8]) -> T {
    bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
}

/// The checksum repairs, as a writer would have made them.
private func repair(_ bytes: inout [UInt8]) {
    guard bytes.count >= 160, bytes.starts(with: [0x89, 0x57, 0x50, 0x4B]) else { return }
    let size = UInt64(bytes.count)
    put(size, at: 40, in: &bytes)
    put(size, at: bytes.count - 24, in: &bytes)
    let headerLength = Int(clamping: read(UInt64.self, at: 24, in: bytes))
    let end = min(64 &+ headerLength, bytes.count - 32)
    if end > 64 {
        let h = Checksum.xxh3(Array(bytes[64..<end]))
        put(h, at: 32, in: &bytes)
        put(h, at: bytes.count - 32, in: &bytes)
    }
    put(Checksum.xxh3(Array(bytes[0..<56])), at: 56, in: &bytes)
}

private func exercise(_ path: String) {
    let store: WeightStore
    do { store = try WeightStore(path: path) } catch { check(error); return }
    _ = store.typedMetadata.count
    for info in store.infos {
        do {
            if info.dtype?.isFloatingPoint == true {
                let t = try store.tensor(info.name)
                if t.scalarCount <= 1 << 20 { _ = t.scalars.reduce(0, +) }
            }
            if info.dtype?.isCodedWeight == true {
                // The view a matrix product reads, and the product itself, on fuzzed blocks.
                let w = try store.codedTensor(info.name)
                if w.scalarCount <= 1 << 16 {
                    _ = w.scalars.reduce(0, +)
                    if w.rank == 2 && w.shape[0] > 0 {
                        _ = matmul(Tensor.ones(shape: [3, w.shape[1]]), w.transposed()).scalars.reduce(0, +)
                    }
                }
            }
            try store.withRawBytes(info.name) { raw in _ = raw.reduce(0, &+) }
        } catch { check(error) }
    }
    do { try store.verify() } catch { check(error) }
}

/// A GGUF input (the corpus seeds one): the import reader, then every tensor's bytes as pack
/// would stream them, K-quant widening included.
private func exerciseGGUF(_ path: String) {
    do {
        let bundle = try GGUF.read(path: path, policy: .keep)
        for t in bundle.tensors where t.byteCount <= 1 << 20 {
            var total = 0
            try t.source.produce { chunk in total += chunk.count }
            if total != t.byteCount { fatalError("tensor '\(t.name)' gave \(total) bytes, declared \(t.byteCount)") }
        }
    } catch { check(error) }
}

private func check(_ error: any Error) {
    let text = "\(error)"
    if text.contains("\n") { fatalError("multi-line error: \(text.debugDescription)") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    if memoryFile < 0 {
        // A file in shared memory, unlinked at once: reached through /proc/self/fd only.
        var template = Array("/dev/shm/wpack-fuzz-XXXXXX".utf8CString)
        memoryFile = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    }
    var bytes = Array(UnsafeBufferPointer(start: data, count: count))
    repair(&bytes)
    ftruncate(memoryFile, 0)
    _ = bytes.withUnsafeBytes { pwrite(memoryFile, $0.baseAddress, $0.count, 0) }
    if bytes.starts(with: Array("GGUF".utf8)) {
        exerciseGGUF("/proc/self/fd/\(memoryFile)")
    } else {
        exercise("/proc/self/fd/\(memoryFile)")
    }
    return 0
}

// SwiftPM links an executable's entry point as `<Target>_main` (renamed to main by the linker),
// while libFuzzer brings its own main. The workaround: define the renamed entry and hand over to
// libFuzzer's driver, so SwiftPM's link step is satisfied and libFuzzer's main is never pulled in.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzStore_main")
public func fuzzStoreMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments) { data, size in fuzz(data, size) }
}
