import CKernels
import Testing

/// wk_reduce's max and min: 32 at a time on the AVX2 build, a scalar loop on the baseline one.
/// Every length across the vector and tail boundaries, the extremum at every position, and a
/// NaN anywhere giving NaN, on both builds.
@Suite(.serialized) struct ExtremumKernelTests {
    @Test(arguments: [false, true])
    func maxAndMin(baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        for n in 1...100 {
            var x = (0..<n).map { Float(($0 * 37) % 101) - 50 }
            for position in Set([0, n / 2, n - 1]) {
                var y = x
                y[position] = 1000
                #expect(wk_reduce(Int32(WK_RMAX.rawValue), y, n) == 1000, "n \(n) at \(position)")
                y[position] = -1000
                #expect(wk_reduce(Int32(WK_RMIN.rawValue), y, n) == -1000, "n \(n) at \(position)")
                y[position] = .nan
                #expect(wk_reduce(Int32(WK_RMAX.rawValue), y, n).isNaN && wk_reduce(Int32(WK_RMIN.rawValue), y, n).isNaN,
                        "n \(n) NaN at \(position)")
            }
            x[n - 1] = -.infinity
            #expect(wk_reduce(Int32(WK_RMIN.rawValue), x, n) == -.infinity)
            #expect(wk_reduce(Int32(WK_RMAX.rawValue), x, n) == (n == 1 ? -.infinity : x.dropLast().max()!))
        }
    }
}
