import CBLAS
import CKernels

/// Every matrix product of the engine: wpack's own packed SGEMM (gemm/sgemm.c, AVX-512, AVX2
/// or baseline micro-kernels chosen at run time), the few-rows kernel that reads a weight in
/// place (gemm/few_rows.c), and OpenBLAS for matrix-vector products only. Everything here
/// takes 2-D slices described by strides and decides whether they can be read in place.
enum GEMM {
    /// How a 2-D slice [rows, cols] with strides (rs, cs) is read: as stored (leading dimension
    /// rs, unit column stride) or transposed (leading dimension cs, unit row stride). nil when
    /// neither works and the operand must be packed.
    struct Layout: Equatable {
        let transposed: Bool
        let leadingDimension: Int

        /// (row stride, column stride) of the slice this layout reads.
        var strides: (Int, Int) { transposed ? (1, leadingDimension) : (leadingDimension, 1) }
    }

    /// A weight W [N, K] stored coded (float16, bfloat16, q8_0, q4_0, q4_1), the right operand
    /// Wᵀ of a product: the rows of W are whole along K and `rowStride` elements apart.
    struct CodedWeight: @unchecked Sendable {
        let dtype: DType
        /// The storage's first byte; elements count from there (for a block type, element e
        /// lies in block e / 32).
        let base: UnsafeRawPointer
        let element: Int
        let rowStride: Int

        var code: Int32 { Int32(dtype.rawValue) }
        /// Where row 0 starts.
        var rows: UnsafeRawPointer { base + element / dtype.blockLength * dtype.byteSize }
        var rowBytes: Int { rowStride / dtype.blockLength * dtype.byteSize }

        func advanced(byElements offset: Int) -> CodedWeight {
            CodedWeight(dtype: dtype, base: base, element: element + offset, rowStride: rowStride)
        }

        /// Rows j0... of W.
        func rows(from j0: Int) -> UnsafeRawPointer { rows + j0 * rowBytes }
    }

    static func layout(rows: Int, cols: Int, rowStride rs: Int, colStride cs: Int) -> Layout? {
        // A stride along an axis of length 1 is never used: any legal value will do.
        let r = rows == 1 ? Swift.max(1, cols) : rs
        let c = cols == 1 ? 1 : cs
        if c == 1 && r >= Swift.max(1, cols) { return Layout(transposed: false, leadingDimension: r) }
        let r2 = rows == 1 ? 1 : rs
        let c2 = cols == 1 ? Swift.max(1, rows) : cs
        if r2 == 1 && c2 >= Swift.max(1, rows) { return Layout(transposed: true, leadingDimension: c2) }
        return nil
    }

    /// OpenBLAS (matrix-vector products only) runs on one thread, always. Its pool busy-waits
    /// (sched_yield) for a while after every call, and those spinning threads fought the engine's elementwise kernels for the two
    /// cores: 13% of a MiniLM forward's cycles went to the scheduler.
    static let threads: Int = {
        openblas_set_num_threads(1)
        return Int(openblas_get_num_threads())
    }()

    /// Products below this many multiply-adds stay on the calling thread.
    static let splitThreshold = 1 << 20
    /// Coded weights of at least this many elements are split over the workers even for one
    /// row of A.
    static let codedSplitThreshold = 1 << 16

    /// A tile of C: its rows and columns.
    typealias TileBody = @Sendable (Range<Int>, Range<Int>) -> Void

    /// C[M, N] (row-major, leading dimension ldc) = A[M, K] · B[K, N] (or, with `accumulate`,
    /// C += A · B), split over the engine's workers unless `split` is false (callers already
    /// running one product per worker). `before` and `after` (packed products only: see
    /// `packedProduct`) run on each tile of C, on the worker that computes it: before its
    /// products, which then accumulate onto what `before` wrote, and after them.
    static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, _ la: Layout, b: UnsafePointer<Float>, _ lb: Layout,
                     c: UnsafeMutablePointer<Float>, ldc: Int, split: Bool = true, accumulate: Bool = false,
                     coded: CodedWeight? = nil) {
        _ = threads
        if m == 0 || n == 0 { return }
        let beta: Float = accumulate ? 1 : 0
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).initialize(repeating: 0, count: n) } }
            return
        }
        if let coded {
            let workers = split && m * n * k >= splitThreshold ? Parallel.workers : 1
            if m <= smallRows && !la.transposed {
                // fewRowsTimesWeight splits a coded weight by its size, not by the multiply-adds:
                // with one row, SmolLM2's 576 x 1536 products are below splitThreshold, and
                // running them on one core left the other idle for most of a decode step.
                fewRowsTimesWeight(m: m, n: n, k: k, a: a, lda: la.leadingDimension, w: b, ldw: 0, c: c, ldc: ldc,
                                   accumulate: accumulate, workers: split ? nil : 1, coded: coded)
            } else {
                packedProduct(m: m, n: n, k: k, a: a, la, b: b, lb, c: c, ldc: ldc, accumulate: accumulate, workers: workers,
                              coded: coded)
            }
            return
        }
        if n == 1 && ldc >= 1 && m > 1 {
            // y = A · b: b is a column; its elements are ld apart when stored as a [K, 1] slice.
            let incb = lb.transposed ? 1 : lb.leadingDimension
            if la.transposed {
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(m), 1, a, Int32(la.leadingDimension), b, Int32(incb), beta, c, Int32(ldc))
            } else {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(k), 1, a, Int32(la.leadingDimension), b, Int32(incb), beta, c, Int32(ldc))
            }
            return
        }
        let workers = split && m * n * k >= splitThreshold ? Parallel.workers : 1
        if readsWeightInPlace(m: m, n: n, k: k, la, lb) {
            fewRowsTimesWeight(m: m, n: n, k: k, a: a, lda: la.leadingDimension, w: b, ldw: lb.leadingDimension, c: c, ldc: ldc,
                               accumulate: accumulate, workers: workers)
            return
        }
        if m == 1 && n > 1 {
            // y = aᵀ · B: a is a row; its elements are ld apart when stored transposed.
            let inca = la.transposed ? la.leadingDimension : 1
            if lb.transposed {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), 1, b, Int32(lb.leadingDimension), a, Int32(inca), beta, c, 1)
            } else {
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), 1, b, Int32(lb.leadingDimension), a, Int32(inca), beta, c, 1)
            }
            return
        }
        packedProduct(m: m, n: n, k: k, a: a, la, b: b, lb, c: c, ldc: ldc, accumulate: accumulate, workers: workers)
    }

    /// Whether `gemm` runs a product of these shapes and layouts through wk_sgemm (and so
    /// honours tile callbacks): not a matrix-vector product, not the few-rows case.
    static func isPacked(m: Int, n: Int, k: Int, _ la: Layout, _ lb: Layout) -> Bool {
        m > 1 && n > 1 && k > 0 && !readsWeightInPlace(m: m, n: n, k: k, la, lb)
    }

    /// wk_sgemm over the engine's workers: B packed once and shared, C dealt out in tiles.
    static func packedProduct(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, _ la: Layout, b: UnsafePointer<Float>, _ lb: Layout,
                              c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, workers: Int,
                              coded: CodedWeight? = nil, before: TileBody? = nil, after: TileBody? = nil) {
        Parallel.start()
        let (rsa, csa) = la.strides, (rsb, csb) = lb.strides
        var callbacks = TileCallbacks(before: before, after: after)
        let beforeTile: wk_sgemm_tile_fn? = before == nil ? nil : { context, r0, r1, c0, c1 in
            context!.assumingMemoryBound(to: TileCallbacks.self).pointee.before!(Int(r0)..<Int(r1), Int(c0)..<Int(c1))
        }
        let afterTile: wk_sgemm_tile_fn? = after == nil ? nil : { context, r0, r1, c0, c1 in
            context!.assumingMemoryBound(to: TileCallbacks.self).pointee.after!(Int(r0)..<Int(r1), Int(c0)..<Int(c1))
        }
        let status = withUnsafeMutablePointer(to: &callbacks) { context in
            if let coded {
                return wk_sgemm_coded(m, n, k, a, rsa, csa, coded.rows, coded.rowBytes, coded.code, c, ldc, accumulate ? 1 : 0,
                                      workers, beforeTile, afterTile, context)
            }
            return wk_sgemm(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, accumulate ? 1 : 0, workers, beforeTile, afterTile, context)
        }
        if status != 0 { fatalError("wpack: out of memory: no scratch space for a [\(m), \(k)] x [\(k), \(n)] product") }
    }

    private struct TileCallbacks {
        let before: TileBody?
        let after: TileBody?
    }

    /// Up to this many rows of A, a product with a weight stored [N, K] is not packed: see
    /// wk_gemm_nt (MiniLM at 1 x 16: 8.3 -> 6.4 ms per forward when it came in). More rows
    /// reuse each weight often enough for packing it to pay off.
    static let smallRows = 32

    /// Whether `fewRowsTimesWeight` takes a product of these shapes and layouts: the case
    /// `gemm` hands to wk_gemm_nt.
    static func readsWeightInPlace(m: Int, n: Int, k: Int, _ la: Layout, _ lb: Layout) -> Bool {
        m >= 1 && m <= smallRows && n > 1 && k > 0 && !la.transposed && lb.transposed
    }

    /// C = A · Wᵀ for few rows (see `readsWeightInPlace`). Each worker streams its own share of
    /// W's rows, in blocks of 16, and passes that share's columns to `prologue` before its
    /// product and to `epilogue` after it: a bias written under the product and an activation
    /// applied over it stay in the worker's cache, and run on every core instead of the caller's
    /// alone. `workers` defaults to all of them above the split threshold.
    static func fewRowsTimesWeight(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, w: UnsafePointer<Float>, ldw: Int,
                                   c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, workers: Int? = nil,
                                   coded: CodedWeight? = nil,
                                   prologue: @Sendable (Range<Int>) -> Void = { _ in },
                                   epilogue: @Sendable (Range<Int>) -> Void = { _ in }) {
        let acc: Int32 = accumulate ? 1 : 0
        // A coded weight of a decode step is read once per product, from memory: what bounds it
        // is the weight's bytes, which every core's share streams in parallel.
        let streamed = coded != nil && n * k >= codedSplitThreshold
        let workers = workers ?? (m * n * k >= splitThreshold || streamed ? Parallel.workers : 1)
        // More rows than a decode step's 4 against a block coding: A rounded to integers once
        // and multiplied by VNNI on every worker, where the machine has it.
        let int8 = coded.flatMap { coded -> Unchecked<OpaquePointer>? in
            let precision = wk_activations()
            guard m > 4, precision != Int32(WK_ACT_FLOAT), wk_int8_products_available() != 0,
                  let rows = wk_int8_rows_alloc(coded.code, precision, m, k) else { return nil }
            return Unchecked(rows)
        }
        defer { if let int8 { wk_int8_rows_free(int8.value) } }
        let shared = Unchecked((a, w, c))
        if let int8, let coded {
            // Rounding took a tenth of MiniLM's products at 1 x 16 on the calling thread alone:
            // each worker rounds a share of the blocks of K, for every row, before any product
            // (a second pool job, so every block is written before one is read).
            let blocks = k / wk_coded_block_length(coded.code)
            Parallel.run(workers) { t in
                wk_int8_rows_fill(int8.value, shared.value.0, lda, blocks * t / workers, blocks * (t + 1) / workers)
            }
        }
        let blocks = (n + 15) / 16
        Parallel.run(workers) { t in
            let (a, w, c) = shared.value
            let j0 = Swift.min(n, blocks * t / workers * 16), j1 = Swift.min(n, blocks * (t + 1) / workers * 16)
            guard j0 < j1 else { return }
            prologue(j0..<j1)
            if let coded {
                if let int8, wk_gemm_nt_int8_rows(int8.value, j1 - j0, coded.rows(from: j0), coded.rowBytes, c + j0, ldc, acc) == 0 {
                    epilogue(j0..<j1)
                    return
                }
                // A decode step's 1 to 4 rows: A rounded to int16, each block an integer product.
                if wk_gemv_coded(m, j1 - j0, k, a, lda, coded.rows(from: j0), coded.rowBytes, coded.code, c + j0, ldc, acc) != 0 {
                    wk_gemm_nt_coded(m, j1 - j0, k, a, lda, coded.rows(from: j0), coded.rowBytes, coded.code, c + j0, ldc, acc)
                }
            } else {
                wk_gemm_nt(m, j1 - j0, k, a, lda, w + j0 * ldw, ldw, c + j0, ldc, acc)
            }
            epilogue(j0..<j1)
        }
    }
}
