import Dispatch
import Foundation

enum Timing {
    /// Median wall time of `repeats` runs of `body`, in milliseconds (callers warm up first).
    static func medianMilliseconds(repeats: Int, _ body: () -> Void) -> Double {
        var times: [Double] = []
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return times.sorted()[times.count / 2]
    }

    /// The process's peak resident set so far, in bytes (Linux reports ru_maxrss in KiB).
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
    }

    /// Blocks until standard input reaches its end: lets tools/bench/compare read this
    /// process's memory map (/proc/PID/smaps_rollup) while its weights are still mapped.
    static func holdUntilStdinCloses() {
        fflush(nil)  // every stream: the report must be out before we wait
        while readLine() != nil {}
    }
}
