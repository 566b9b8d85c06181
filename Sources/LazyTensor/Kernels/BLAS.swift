import CBLAS

/// The one place that talks to the BLAS (OpenBLAS, pthreads build, from Debian; chosen in
/// Sources/CBLAS). Everything here takes 2-D slices described by strides and decides whether
/// the BLAS can read them in place.
enum BLAS {
    /// How a 2-D slice [rows, cols] with strides (rs, cs) is handed to a row-major BLAS call:
    /// as stored (leading dimension rs, unit column stride) or transposed (leading dimension
    /// cs, unit row stride). nil when neither works and the operand must be packed.
    struct Layout: Equatable {
        let transposed: Bool
        let leadingDimension: Int
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

    /// The BLAS's own threads: set once, deliberately. The engine never calls the BLAS from
    /// inside its own parallel loops, so the two pools never run at the same time.
    static let threads: Int = {
        openblas_set_num_threads(Int32(Parallel.workers))
        return Int(openblas_get_num_threads())
    }()

    /// Runs `body` with the BLAS on one thread, for callers that spread many small products
    /// over the engine's own workers instead: for attention's 384 products of 128x128x32 this
    /// halves the time, because waking the BLAS's threads costs more than each product.
    static func singleThreaded(_ body: () -> Void) {
        _ = threads
        openblas_set_num_threads(1)
        body()
        openblas_set_num_threads(Int32(Parallel.workers))
    }

    /// C[M, N] (row-major, leading dimension ldc) = A[M, K] · B[K, N].
    static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, _ la: Layout, b: UnsafePointer<Float>, _ lb: Layout,
                     c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = threads
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { (c + i * ldc).initialize(repeating: 0, count: n) }
            return
        }
        if n == 1 && ldc >= 1 && m > 1 {
            // y = A · b: b is a column; its elements are ld apart when stored as a [K, 1] slice.
            let incb = lb.transposed ? 1 : lb.leadingDimension
            if la.transposed {
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(m), 1, a, Int32(la.leadingDimension), b, Int32(incb), 0, c, Int32(ldc))
            } else {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(k), 1, a, Int32(la.leadingDimension), b, Int32(incb), 0, c, Int32(ldc))
            }
            return
        }
        if m == 1 && n > 1 {
            // y = aᵀ · B: a is a row; its elements are ld apart when stored transposed.
            let inca = la.transposed ? la.leadingDimension : 1
            if lb.transposed {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), 1, b, Int32(lb.leadingDimension), a, Int32(inca), 0, c, 1)
            } else {
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), 1, b, Int32(lb.leadingDimension), a, Int32(inca), 0, c, 1)
            }
            return
        }
        cblas_sgemm(CblasRowMajor, la.transposed ? CblasTrans : CblasNoTrans, lb.transposed ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(la.leadingDimension), b, Int32(lb.leadingDimension),
                    0, c, Int32(ldc))
    }
}
