import Foundation
import Testing
import CKernels
@testable import LazyTensor
@testable import WeightStore

/// Weights in 16, 8 and 4 bits: encoded exactly as GGUF's own quantizers encode them, stored
/// as .wpk 1.1 dtypes, viewed in place, and multiplied by matmul without being widened.
@Suite(.serialized) struct CodedWeightTests {
    static let codings: [DType] = [.float16, .bfloat16, .q8_0, .q4_0, .q4_1]

    struct Vectors: Decodable {
        struct Coding: Decodable { let hex: String; let decoded: [Double] }
        let shape: [Int]
        let values: [Double]
        let codings: [String: Coding]
    }

    static let vectors: Vectors = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("quant/vectors.json")))
        return try! JSONDecoder().decode(Vectors.self, from: data)
    }()

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The bytes of gguf-py (llama.cpp's Python library) for the same rows, and its decoded
    /// values, bit for bit: blocks with zeros, a constant block, an outlier, rounding ties.
    @Test(arguments: ["bfloat16", "q8_0", "q4_0", "q4_1"])
    func encodesAsGGUFDoes(name: String) throws {
        let v = Self.vectors
        let dtype = DType.allCases.first { $0.name == name }!
        let expected = v.codings[name]!
        let (bytes, error) = try Quantization.encode(v.values.map(Float.init), shape: v.shape, as: dtype)
        #expect(Self.hex(bytes) == expected.hex)
        var decoded = [Float](repeating: 0, count: v.values.count)
        bytes.withUnsafeBytes { raw in
            decoded.withUnsafeMutableBufferPointer { Widening.toFloat32(raw, dtype: dtype, count: v.values.count, into: $0.baseAddress!) }
        }
        #expect(decoded == expected.decoded.map(Float.init))
        let worst = zip(v.values, expected.decoded).map { abs($0 - $1) }.max()!
        #expect(abs(error.maxAbsolute - worst) <= 1e-9)
    }

    @Test func refusesWhatItCannotEncode() {
        #expect(throws: Quantization.Failure.self) { try Quantization.encode([Float](repeating: 1, count: 48), shape: [2, 24], as: .q8_0) }
        var nan = [Float](repeating: 1, count: 32)
        nan[7] = .nan
        #expect(throws: Quantization.Failure.self) { try Quantization.encode(nan, shape: [1, 32], as: .q4_0) }
        #expect(throws: Quantization.Failure.self) { try Quantization.encode([1, 2], shape: [2], as: .int8) }
    }

    /// A store holding one weight in each coding, and the float32 values its blocks decode to.
    static func store(_ folder: TemporaryFolder, n: Int, k: Int, codec: Codec = .none) throws -> (WeightStore, [DType: [Float]]) {
        let path = folder.file("coded.wpk")
        let writer = try WeightStoreWriter(path: path)
        let values = Tensor.randn(shape: [n, k], seed: 7).scalars.map { $0 * 0.1 }
        var decoded: [DType: [Float]] = [:]
        for dtype in codings {
            let (bytes, _) = try Quantization.encode(values, shape: [n, k], as: dtype)
            try writer.addTensor(name: "w." + dtype.name, dtype: dtype, shape: [n, k], codec: codec, source: .bytes(bytes))
            var out = [Float](repeating: 0, count: n * k)
            bytes.withUnsafeBytes { raw in out.withUnsafeMutableBufferPointer { Widening.toFloat32(raw, dtype: dtype, count: n * k, into: $0.baseAddress!) } }
            decoded[dtype] = out
        }
        try writer.addTensor(name: "plain", Tensor.randn(shape: [3], seed: 1))
        try writer.finish()
        return (try WeightStore(path: path, verify: .eager), decoded)
    }

    @Test func storedAsFormatOneOneAndViewedInPlace() throws {
        let folder = TemporaryFolder()
        let (store, decoded) = try Self.store(folder, n: 8, k: 64)
        #expect(store.version.major == 1 && store.version.minor == 1)
        for dtype in Self.codings {
            let name = "w." + dtype.name
            let info = store.info(name)!
            #expect(info.dtype == dtype && info.rawBytes == dtype.storedBytes(shape: [8, 64]))
            let (w, stats) = Stats.measure { try! store.codedTensor(name) }
            #expect(w.dtype == dtype && w.shape == [8, 64] && stats.bytesCopied == 0 && stats.bytesAllocated == 0)
            // The view is of the mapped bytes themselves, and the same storage every time.
            let again = try store.codedTensor(name)
            #expect(w.storage.kind == .mapped && w.storage === again.storage)
            #expect(UnsafeRawPointer(w.storage.baseAddress) == UnsafeRawPointer(store.file.bytes.baseAddress! + info.offset))
            #expect(w.scalars == decoded[dtype]!)
            // tensor(_:) is float32, decoded once.
            let f = try store.tensor(name)
            #expect(f.dtype == .float32 && f.scalars == decoded[dtype]!)
        }
        // A file without the new dtypes stays 1.0, for older readers.
        let plain = folder.file("plain.wpk")
        let writer = try WeightStoreWriter(path: plain)
        try writer.addTensor(name: "x", Tensor.randn(shape: [4], seed: 2))
        try writer.finish()
        #expect(try WeightStore(path: plain).version == (1, 0))
    }

    @Test func compressedCodedWeightsDecompressOnce() throws {
        let folder = TemporaryFolder()
        let (store, decoded) = try Self.store(folder, n: 4, k: 96, codec: .zstd)
        let (w, stats) = Stats.measure { try! store.codedTensor("w.q4_1") }
        #expect(w.storage.kind == .heap && stats.copiedByReason == [.decode: DType.q4_1.storedBytes(shape: [4, 96])!])
        #expect(w.scalars == decoded[.q4_1]!)
    }

    @Test func blockShapesAreCheckedOnBothSides() throws {
        let folder = TemporaryFolder()
        let writer = try WeightStoreWriter(path: folder.file("bad.wpk"))
        #expect(throws: WeightStoreError.self) {
            try writer.addTensor(name: "w", dtype: .q8_0, shape: [2, 40], source: .bytes([]))
        }
        // A reader of a file whose record claims [2, 40] in q8_0 refuses it by name.
        let good = folder.file("good.wpk")
        let w2 = try WeightStoreWriter(path: good)
        let (bytes, _) = try Quantization.encode([Float](repeating: 0.5, count: 64), shape: [2, 32], as: .q8_0)
        try w2.addTensor(name: "w", dtype: .q8_0, shape: [2, 32], source: .bytes(bytes))
        try w2.finish()
        var file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        // dims[1] of record 0 (header at 64, records at 64 + 32; dims at +16), then rehash.
        let dimOffset = 64 + 32 + 16 + 8
        file[dimOffset] = 40
        // The minor version set back to 0 makes dtype 14 unknown instead.
        rewriteHashes(&file)
        try Data(file).write(to: URL(fileURLWithPath: folder.file("shape.wpk")))
        #expect { try WeightStore(path: folder.file("shape.wpk")) } throws: { error in
            guard case WeightStoreError.blockShapeInvalid(name: "w", dtype: "q8_0", shape: [2, 40]) = error else { return false }
            return true
        }
        var old = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        old[10] = 0
        rewriteHashes(&old)
        try Data(old).write(to: URL(fileURLWithPath: folder.file("old.wpk")))
        #expect { try WeightStore(path: folder.file("old.wpk")) } throws: { error in
            guard case WeightStoreError.unknownDType(name: "w", code: 14) = error else { return false }
            return true
        }
    }

    /// A view of blocks that would cut them is refused where it is made, with the op named.
    @Test func blockViewsMustKeepBlocksWhole() {
        let storage = Storage(allocatingByteCount: 4 * 34)
        #expect(throws: TensorError.self) { try Tensor.withErrors { _ = Tensor(storage: storage, shape: [2, 40], dtype: .q8_0) } }
        #expect(throws: TensorError.self) { try Tensor.withErrors { _ = Tensor(storage: storage, offset: 5, shape: [1, 32], dtype: .q8_0) } }
        #expect(throws: TensorError.self) { try Tensor.withErrors { _ = Tensor(storage: storage, shape: [32, 2], strides: [1, 32], dtype: .q4_0) } }
        #expect(throws: Never.self) { try Tensor.withErrors { _ = Tensor(storage: storage, offset: 32, shape: [3, 32], dtype: .q8_0) } }
    }

    /// Recomputes the header hash (preamble, footer) and the preamble hash after an edit.
    func rewriteHashes(_ file: inout [UInt8]) {
        let headerLength = Int(file.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 24, as: UInt64.self) })
        let headerHash = file.withUnsafeBytes { Checksum.xxh3(UnsafeRawBufferPointer(rebasing: $0[64..<(64 + headerLength)])) }
        file.withUnsafeMutableBytes { $0.storeBytes(of: headerHash, toByteOffset: 32, as: UInt64.self) }
        let footer = file.count - 32
        file.withUnsafeMutableBytes { $0.storeBytes(of: headerHash, toByteOffset: footer, as: UInt64.self) }
        let preambleHash = file.withUnsafeBytes { Checksum.xxh3(UnsafeRawBufferPointer(rebasing: $0[0..<56])) }
        file.withUnsafeMutableBytes { $0.storeBytes(of: preambleHash, toByteOffset: 56, as: UInt64.self) }
    }

    /// x · Wᵀ with W coded, at every kernel level: the few-rows path (up to 32 rows) and the
    /// packed GEMM (B's panels decoded while packed), rows of every size around the blocking,
    /// one kernel, nothing copied, nothing allocated but the output; equal to the product with
    /// the decoded float32 weight.
    @Test(arguments: CPU.availableLevels)
    func productsReadTheCodingInPlace(level: CPU.Level) throws {
        let folder = TemporaryFolder()
        let (n, k) = (40, 96)
        let (store, decoded) = try Self.store(folder, n: n, k: k)
        try CPU.withLevel(level) {
            for dtype in Self.codings {
                let w = try store.codedTensor("w." + dtype.name)
                let reference = Tensor(shape: [n, k], scalars: decoded[dtype]!)
                for m in [1, 3, 16, 33, 100] {
                    let x = Tensor.randn(shape: [m, k], seed: UInt64(m))
                    let (y, stats) = Stats.measure { matmul(x, w.transposed()).materialized() }
                    #expect(stats.kernels == 1 && stats.bytesCopied == 0 && stats.bytesAllocated == m * n * 4,
                            "\(dtype) m \(m): \(stats)")
                    let expected = matmul(x, reference.transposed()).scalars
                    if m > 4 && dtype.isBlockQuantized && wk_int8_products_available() != 0 {
                        // More rows round A to integers (integerActivations checks those bits).
                        let bound = Self.integerBound(x.scalars, decoded[dtype]!, m: m, n: n, k: k)
                        #expect((0..<(m * n)).allSatisfy { abs(y.scalars[$0] - expected[$0]) <= bound[$0] * 1.01 + 1e-4 },
                                "\(dtype) m \(m) at \(level)")
                        continue
                    }
                    let worst = zip(y.scalars, expected).map { abs($0 - $1) }.max()!
                    // 1 to 4 rows of a block type round A to int16: within 1e-4 of the outputs'
                    // size (blockDotProductsForDecodeSteps checks that path's own bound).
                    let scale = expected.map(abs).max()!
                    let tolerance = m <= 4 && dtype.isBlockQuantized ? 1e-4 * scale : 1e-4
                    #expect(worst <= tolerance, "\(dtype) m \(m) at \(level): \(worst) of \(scale)")
                }
            }
        }
    }

    /// How far a product with integer activations may be from the float one, per output: each
    /// activation moves by at most half its block's int8 step (max |x_b| / 254), or at int16 by
    /// one step of max |x_b| / 32512 (the residual's clamp can double the half step), times the
    /// block's summed |w|.
    static func integerBound(_ x: [Float], _ w: [Float], m: Int, n: Int, k: Int,
                             precision: ActivationPrecision = .current) -> [Float] {
        let step: Float = precision == .int8 ? 254 : 32512
        var bound = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                for b in 0..<(k / 32) {
                    let block = (b * 32)..<(b * 32 + 32)
                    bound[i * n + j] += block.map { abs(x[i * k + $0]) }.max()! / step * block.map { abs(w[j * k + $0]) }.reduce(0, +)
                }
            }
        }
        return bound
    }

    /// Block-coded weights against activations rounded to int8 or int16 (coded_int8.c). The C
    /// reference is within the activations' rounding bound of the float product of the decoded weights;
    /// the VNNI kernel, where the machine has it, gives the reference's bits: rows in part of a
    /// group of 16 and in several, columns past the last group of 8, accumulation, a NaN.
    @Test(arguments: [ActivationPrecision.int8, .int16])
    func integerActivations(precision: ActivationPrecision) throws {
        let folder = TemporaryFolder()
        let (n, k) = (21, 96)
        let (store, decoded) = try Self.store(folder, n: n, k: k)
        let vnni = CPU.availableLevels.contains(.avx512) && CPU.withLevel(.avx512) { wk_int8_products_available() != 0 }
        for dtype in [DType.q8_0, .q4_0, .q4_1] {
            let raw = try store.withRawBytes("w." + dtype.name) { [UInt8]($0) }
            let rowBytes = k / 32 * dtype.byteSize
            let w = decoded[dtype]!
            for m in [1, 5, 16, 17, 40] {
                var x = Tensor.randn(shape: [m, k], seed: UInt64(10 + m)).scalars
                if m == 17 { x[16 * k + 40] = .nan }  // row 16's second block
                let start = (0..<(m * n)).map { Float($0 % 7) }
                var reference = start
                let bound = Self.integerBound(x, w, m: m, n: n, k: k, precision: precision)
                #expect(raw.withUnsafeBytes { wk_gemm_nt_int8_reference(precision.code, m, n, k, x, k, $0.baseAddress, rowBytes, Int32(dtype.rawValue), &reference, n, 1) } == 0)
                for i in 0..<m {
                    for j in 0..<n {
                        let got = reference[i * n + j] - start[i * n + j]
                        if m == 17 && i == 16 {
                            #expect(got.isNaN, "\(dtype) row with a NaN")
                            continue
                        }
                        let exact = (0..<k).reduce(Float(0)) { $0 + x[i * k + $1] * w[j * k + $1] }
                        #expect(abs(got - exact) <= bound[i * n + j] * 1.01 + 1e-5, "\(dtype) m \(m) (\(i), \(j)): \(got) vs \(exact), bound \(bound[i * n + j])")
                    }
                }
                guard vnni else { continue }
                var fast = start
                let status = CPU.withLevel(.avx512) {
                    raw.withUnsafeBytes { wk_gemm_nt_int8(precision.code, m, n, k, x, k, $0.baseAddress, rowBytes, Int32(dtype.rawValue), &fast, n, 1) }
                }
                #expect(status == 0)
                #expect(zip(fast, reference).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "\(dtype) m \(m)")
            }
        }
        // K that is not whole blocks is refused, not read past; below avx512 the kernel declines.
        let raw = try store.withRawBytes("w.q8_0") { [UInt8]($0) }
        var out = [Float](repeating: 0, count: 1)
        #expect(wk_gemm_nt_int8_reference(precision.code, 1, 1, 40, [Float](repeating: 1, count: 40), 40, raw, 34, Int32(DType.q8_0.rawValue), &out, 1, 0) == -1)
        #expect(wk_gemm_nt_int8_reference(precision.code, 1, 1, 32, [Float](repeating: 1, count: 32), 32, raw, 4, Int32(DType.float32.rawValue), &out, 1, 0) == -1)
        if CPU.availableLevels.contains(.avx2) {
            #expect(wk_gemm_nt_int8_reference(Int32(WK_ACT_FLOAT), 1, 1, 32, [Float](repeating: 1, count: 32), 32, raw, 34, Int32(DType.q8_0.rawValue), &out, 1, 0) == -1)
            #expect(CPU.withLevel(.avx2) { wk_gemm_nt_int8(precision.code, 1, 1, 32, [Float](repeating: 1, count: 32), 32, raw, 34, Int32(DType.q8_0.rawValue), &out, 1, 0) } == -1)
        }
    }

    /// The caller chooses what a product of more than 4 rows does with its activations, for
    /// the few-rows path (16 rows) and the packed one (70), on every worker: `.float` gives the
    /// float32 product of the decoded weight, `.int8` and `.int16` the bits of wk_gemm_nt_int8
    /// at that precision; int16 is the default.
    @Test func activationPrecisionIsTheCallersChoice() throws {
        guard ActivationPrecision.requested == nil else { return }  // WPACK_ACTIVATIONS decides for everyone
        let folder = TemporaryFolder()
        let (n, k) = (40, 96)
        let (store, decoded) = try Self.store(folder, n: n, k: k)
        let dtype = DType.q4_1
        let w = try store.codedTensor("w." + dtype.name)
        let raw = try store.withRawBytes("w." + dtype.name) { [UInt8]($0) }
        let reference = Tensor(shape: [n, k], scalars: decoded[dtype]!)
        #expect(ActivationPrecision.current == .int16)
        for m in [16, 70] {
            let x = Tensor.randn(shape: [m, k], seed: UInt64(m))
            let expected = matmul(x, reference.transposed()).scalars
            let exact = ActivationPrecision.with(.float) {
                #expect(ActivationPrecision.current == .float)
                return matmul(x, w.transposed()).materialized().scalars
            }
            #expect(zip(exact, expected).allSatisfy { abs($0 - $1) <= 1e-4 }, "m \(m)")
            guard wk_int8_products_available() != 0 else { continue }
            var errors: [ActivationPrecision: Float] = [:]
            for precision in [ActivationPrecision.int8, .int16] {
                let rounded = ActivationPrecision.with(precision) { matmul(x, w.transposed()).materialized().scalars }
                var bits = [Float](repeating: 0, count: m * n)
                #expect(raw.withUnsafeBytes {
                    wk_gemm_nt_int8(precision.code, m, n, k, x.scalars, k, $0.baseAddress, k / 32 * dtype.byteSize, Int32(dtype.rawValue), &bits, n, 0)
                } == 0)
                #expect(zip(rounded, bits).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(precision) m \(m)")
                // Rounded in pieces of K's blocks, in any order (as the workers share it): the same bits.
                let scalars = x.scalars
                let pieces = try #require(wk_int8_rows_alloc(Int32(dtype.rawValue), precision.code, m, k))
                defer { wk_int8_rows_free(pieces) }
                wk_int8_rows_fill(pieces, scalars, k, 1, 3)
                wk_int8_rows_fill(pieces, scalars, k, 0, 1)
                var pieced = [Float](repeating: 0, count: m * n)
                #expect(raw.withUnsafeBytes { wk_gemm_nt_int8_rows(pieces, n, $0.baseAddress, k / 32 * dtype.byteSize, &pieced, n, 0) } == 0)
                #expect(zip(pieced, bits).allSatisfy { $0.bitPattern == $1.bitPattern }, "pieces, \(precision) m \(m)")
                errors[precision] = zip(rounded, expected).map { abs($0 - $1) }.max()!
            }
            // int16's error is a small fraction of int8's, and neither is zero.
            #expect(errors[.int16]! > 0 && errors[.int16]! * 20 < errors[.int8]!, "m \(m): \(errors)")
        }
        #expect(ActivationPrecision.current == .int16)
    }

    /// Small products of a batch whose rows do not merge run whole, one per worker at a time
    /// (Executor.runMatmul's spread), so a helper thread decides their precision: the pool
    /// carries the caller's choice to it, and every batch has the single-thread kernel's bits.
    /// A helper left at the default int16 would give other bits in its batches.
    @Test func helpersUseTheCallersPrecision() throws {
        guard ActivationPrecision.requested == nil, wk_int8_products_available() != 0, Parallel.workers > 1 else { return }
        let folder = TemporaryFolder()
        let (n, k, m, batches) = (40, 96, 16, 8)
        let (store, _) = try Self.store(folder, n: n, k: k)
        let dtype = DType.q8_0
        let w = try store.codedTensor("w." + dtype.name)
        let raw = try store.withRawBytes("w." + dtype.name) { [UInt8]($0) }
        // Rows 0..<16 of 32 in each batch: batch and row axes do not merge into one product.
        let x = Tensor.randn(shape: [batches, 2 * m, k], seed: 11).sliced(axis: 1, range: 0..<m)
        let rows = x.materialized().scalars
        for precision in [ActivationPrecision.int8, .int16] {
            let (product, stats) = Stats.measure { ActivationPrecision.with(precision) { matmul(x, w.transposed()).materialized().scalars } }
            #expect(stats.kernels == 1, "\(stats)")
            var bits = [Float](repeating: 0, count: batches * m * n)
            for b in 0..<batches {
                #expect(raw.withUnsafeBytes { weight in
                    rows.withUnsafeBufferPointer { a in
                        bits.withUnsafeMutableBufferPointer { c in
                            wk_gemm_nt_int8(precision.code, m, n, k, a.baseAddress! + b * m * k, k, weight.baseAddress, k / 32 * dtype.byteSize,
                                            Int32(dtype.rawValue), c.baseAddress! + b * m * n, n, 0)
                        }
                    }
                } == 0)
            }
            #expect(zip(product, bits).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(precision)")
        }
    }

    /// A Linear layer's bias, residual and activation still run as the product's epilogue
    /// (one kernel), for few rows and many, and a batch of [B, T, K] merges into one product.
    @Test func epiloguesAndBatchesWithACodedWeight() throws {
        let folder = TemporaryFolder()
        let (n, k) = (40, 96)
        let (store, decoded) = try Self.store(folder, n: n, k: k)
        let w = try store.codedTensor("w.q8_0")
        let reference = Tensor(shape: [n, k], scalars: decoded[.q8_0]!)
        let bias = Tensor.randn(shape: [n], seed: 3)
        for rows in [5, 70] {
            let x = Tensor.randn(shape: [2, rows, k], seed: 4)
            let residual = Tensor.randn(shape: [2, rows, n], seed: 5)
            let (y, stats) = Stats.measure { (matmul(x, w.transposed()) + bias + residual).gelu().materialized() }
            #expect(stats.kernels == 1 && stats.bytesCopied == 0, "rows \(rows): \(stats)")
            let expected = (matmul(x, reference.transposed()) + bias + residual).gelu().scalars
            // Rounded to integers where the machine multiplies so: GELU's slope is at most 1.13.
            let bound = wk_int8_products_available() != 0 ? Self.integerBound(x.scalars, decoded[.q8_0]!, m: 2 * rows, n: n, k: k).map { $0 * 1.13 * 1.01 }
                : [Float](repeating: 0, count: 2 * rows * n)
            #expect((0..<(2 * rows * n)).allSatisfy { abs(y.scalars[$0] - expected[$0]) <= bound[$0] + 1e-4 }, "rows \(rows)")
        }
    }

    /// Anything but a product widens a coded tensor first, in a kernel of its own, counted.
    @Test func otherOpsWidenCounted() throws {
        let folder = TemporaryFolder()
        let (store, decoded) = try Self.store(folder, n: 4, k: 64)
        let w = try store.codedTensor("w.q4_0")
        let (y, stats) = Stats.measure { (w * 2).materialized() }
        #expect(stats.copiedByReason == [.convert: 4 * 64 * 4])
        #expect(y.scalars == decoded[.q4_0]!.map { $0 * 2 })
        // A view that cuts blocks is widened element by element, correctly.
        let cut = w.sliced(axis: 1, range: 5..<37)
        let all = decoded[.q4_0]!
        var expectedCut: [Float] = []
        for r in 0..<4 { expectedCut += all[(r * 64 + 5)..<(r * 64 + 37)] }
        #expect(cut.scalars == expectedCut)
        // As the left operand of a product it is widened too (only the weight side reads codes).
        let (_, left) = Stats.measure { matmul(w, Tensor.randn(shape: [64, 3], seed: 1)).materialized() }
        #expect(left.copiedByReason[.convert] == 4 * 64 * 4)
        #expect(matmul(Tensor.randn(shape: [2, 64], seed: 2), w.transposed()).plan().description.contains("q4_0"))
    }

    /// unpack: the halves are written as stored; the block types, which neither .safetensors nor
    /// .npz has, as the float32 values they decode to.
    @Test(arguments: ["safetensors", "npz"])
    func unpackWidensOnlyTheBlockTypes(format: String) throws {
        let folder = TemporaryFolder()
        let (store, decoded) = try Self.store(folder, n: 4, k: 64)
        let out = folder.file("out." + format)
        if format == "npz" {
            // NumPy has no bfloat16: refused by name, and no file is left.
            #expect(throws: InterchangeError.self) { try Npz.write(store, to: out) }
            #expect(!FileManager.default.fileExists(atPath: out))
            let plain = folder.file("q.wpk")
            let writer = try WeightStoreWriter(path: plain)
            for dtype in Self.codings where dtype != .bfloat16 {
                let info = store.info("w." + dtype.name)!
                let bytes = try store.withRawBytes(info.name) { [UInt8]($0) }
                try writer.addTensor(name: info.name, dtype: dtype, shape: info.shape, source: .bytes(bytes))
            }
            try writer.finish()
            try Npz.write(try WeightStore(path: plain), to: out)
        } else {
            try Safetensors.write(store, to: out)
        }
        let bundle = try InputReader.read(path: out, policy: .keep)
        for dtype in Self.codings where format == "safetensors" || dtype != .bfloat16 {
            let t = try #require(bundle.tensors.first { $0.name == "w." + dtype.name })
            #expect(t.dtype == (dtype.isBlockQuantized ? .float32 : dtype) && t.shape == [4, 64])
            var raw = [UInt8]()
            try t.source.produce { raw += $0 }
            var values = [Float](repeating: 0, count: 256)
            raw.withUnsafeBytes { r in values.withUnsafeMutableBufferPointer { Widening.toFloat32(r, dtype: t.dtype, count: 256, into: $0.baseAddress!) } }
            #expect(values == decoded[dtype]!, "\(dtype)")
        }
    }

    /// The decode-step product (1 to 4 rows, A rounded to int16 per block of 32) against the
    /// panel path it replaces (the float product of the decoded weights), at every level:
    /// within the bound the rounding allows, half an int16 step of each block's largest
    /// activation times the block's summed |w|; N not a multiple of anything, K past the
    /// kernel's stack buffers (K above 4096 takes the heap), accumulation, and the shapes it declines.
    @Test(arguments: CPU.availableLevels)
    func blockDotProductsForDecodeSteps(level: CPU.Level) throws {
        let folder = TemporaryFolder()
        for (n, k) in [(37, 96), (2, 4096), (5, 8256), (3, 16416)] {
            let (store, decoded) = try Self.store(folder, n: n, k: k)
            for dtype in Self.codings where dtype.isBlockQuantized {
                let raw = try store.withRawBytes("w." + dtype.name) { [UInt8]($0) }
                let rowBytes = raw.count / n
                let code = Int32(dtype.rawValue)
                for m in 1...4 {
                    let x = Tensor.randn(shape: [m, k], seed: UInt64(20 + m)).scalars
                    for accumulate in [Int32(0), 1] {
                        var y = [Float](repeating: 0.5, count: m * n), expected = y
                        let status = CPU.withLevel(level) {
                            raw.withUnsafeBytes { r in
                                wk_gemm_nt_coded(m, n, k, x, k, r.baseAddress, rowBytes, code, &expected, n, accumulate)
                                return wk_gemv_coded(m, n, k, x, k, r.baseAddress, rowBytes, code, &y, n, accumulate)
                            }
                        }
                        #expect(status == 0)
                        let scale = expected.map(abs).max()!
                        let weights = decoded[dtype]!
                        for i in 0..<m {
                            for j in 0..<n {
                                var bound = 1e-5 * Double(scale)
                                for b in 0..<(k / 32) {
                                    let block = (b * 32)..<(b * 32 + 32)
                                    let largest = block.map { abs(Double(x[i * k + $0])) }.max()!
                                    bound += largest / 65534 * block.map { abs(Double(weights[j * k + $0])) }.reduce(0, +)
                                }
                                let error = abs(Double(y[i * n + j]) - Double(expected[i * n + j]))
                                #expect(error <= bound, "\(dtype) \(m) x \(n) x \(k) acc \(accumulate) at \(level) [\(i), \(j)]: \(error) > \(bound)")
                            }
                        }
                    }
                }
            }
        }
        // A NaN or an infinity in A is not rounded into a finite number: the outputs are NaN.
        let (nonFinite, _) = try Self.store(folder, n: 3, k: 64)
        for dtype in Self.codings where dtype.isBlockQuantized {
            let raw = try nonFinite.withRawBytes("w." + dtype.name) { [UInt8]($0) }
            for bad in [Float.nan, .infinity, -.infinity] {
                var x = Tensor.randn(shape: [1, 64], seed: 5).scalars
                x[40] = bad
                var y = [Float](repeating: 0, count: 3)
                let status = CPU.withLevel(level) {
                    raw.withUnsafeBytes { r in wk_gemv_coded(1, 3, 64, x, 64, r.baseAddress, raw.count / 3, Int32(dtype.rawValue), &y, 3, 0) }
                }
                #expect(status == 0 && y.allSatisfy(\.isNaN), "\(dtype) with \(bad) at \(level): \(y)")
            }
        }
        let (store, _) = try Self.store(folder, n: 4, k: 64)
        let raw = try store.withRawBytes("w.q4_1") { [UInt8]($0) }
        var out = [Float](repeating: 0, count: 20)
        let x = [Float](repeating: 1, count: 5 * 64)
        #expect(wk_gemv_coded(5, 4, 64, x, 64, raw, 40, Int32(DType.q4_1.rawValue), &out, 4, 0) == -1)
        #expect(wk_gemv_coded(1, 4, 48, x, 48, raw, 40, Int32(DType.q4_1.rawValue), &out, 4, 0) == -1)
        #expect(wk_gemv_coded(1, 4, 64, x, 64, raw, 40, Int32(DType.float16.rawValue), &out, 4, 0) == -1)
    }

    /// A coded table's rows are decoded where a lookup picks them, and nowhere else: the copy is
    /// the gathered rows, as for float32, whether the ids are Swift integers (gatherRows) or a
    /// tensor read when the kernel runs (take along axis 0, an embedding lookup in a decode
    /// loop). Any other take widens the table first, counted.
    @Test func gatheredRowsOfACodedTable() throws {
        let folder = TemporaryFolder()
        let (store, decoded) = try Self.store(folder, n: 40, k: 96)
        for dtype in Self.codings {
            let table = try store.codedTensor("w." + dtype.name)
            let ids = [3, 0, 39, 3]
            let (rows, stats) = Stats.measure { table.gatherRows(ids, indexShape: [2, 2]).materialized() }
            #expect(rows.shape == [2, 2, 96] && stats.copiedByReason == [.gather: 4 * 96 * 4], "\(dtype): \(stats)")
            let all = decoded[dtype]!
            #expect(rows.scalars == ids.flatMap { all[($0 * 96)..<($0 * 96 + 96)] }, "\(dtype)")
            let picks = Tensor(shape: [1, 2], integers: [39, -1])
            let (taken, takeStats) = Stats.measure { table.take(picks, axis: 0).materialized() }
            #expect(taken.dtype == .float32 && taken.shape == [1, 2, 96])
            let row39 = Array(all[(39 * 96)..<(40 * 96)])
            #expect(taken.scalars == row39 + row39, "\(dtype)")
            #expect(takeStats.copiedByReason == [.gather: 2 * 96 * 4], "\(dtype): \(takeStats)")
            let columnPicks = Tensor(shape: [2], integers: [5, 0])
            let (columns, columnStats) = Stats.measure { table.take(columnPicks, axis: 1).materialized() }
            var expectedColumns: [Float] = []
            for r in 0..<40 { expectedColumns += [all[r * 96 + 5], all[r * 96]] }
            #expect(columns.scalars == expectedColumns)
            #expect(columnStats.copiedByReason[.convert] == 40 * 96 * 4, "\(dtype): \(columnStats)")
        }
    }

    /// `wpack pack --weights`: which tensors are chosen, and the patterns that change it.
    @Test func conversionChoosesLinearMatrices() throws {
        func input(_ name: String, _ shape: [Int]) -> InputTensor {
            InputTensor(name: name, dtype: .float32, sourceDType: .float32, shape: shape, source: .bytes([]))
        }
        let q8 = WeightConversion(dtype: .q8_0)
        #expect(try q8.selects(input("encoder.layer.0.attention.self.query.weight", [384, 384])))
        #expect(try !q8.selects(input("embeddings.word_embeddings.weight", [30522, 384])))
        #expect(try !q8.selects(input("encoder.layer.0.attention.self.query.bias", [384])))
        #expect(try !q8.selects(input("conv.weight", [8, 1, 3, 3])))
        #expect(try !q8.selects(input("head.weight", [10, 50])), "50 is not a whole number of blocks")
        let custom = WeightConversion(dtype: .q8_0, keep: ["*.query.weight"], convert: ["embeddings.*"])
        #expect(try !custom.selects(input("encoder.layer.0.attention.self.query.weight", [384, 384])))
        #expect(try custom.selects(input("embeddings.word_embeddings.weight", [30522, 384])))
        #expect(throws: InterchangeError.self) { try WeightConversion(dtype: .q4_0, convert: ["x"]).selects(input("x", [3, 5])) }
        #expect(Glob.matches("encoder.*.weight", "encoder.layer.1.output.dense.weight"))
        #expect(!Glob.matches("encoder.*.weight", "encoder.layer.1.output.dense.bias"))
        #expect(Glob.matches("a?c", "abc") && !Glob.matches("a?c", "ac"))
    }
}
