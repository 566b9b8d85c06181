import Dispatch
import Foundation

/// Wall time per kind of kernel (and for planning), for finding where a model's time goes
/// without a profiler: set WPACK_PROFILE=1 and a table is printed to standard error when the
/// process exits. Off, it costs one branch per kernel.
final class Profile: @unchecked Sendable {
    static let shared: Profile? = {
        guard let v = getenv("WPACK_PROFILE"), String(cString: v) != "0" else { return nil }
        let p = Profile()
        atexit { Profile.shared?.report() }
        return p
    }()

    private let lock = NSLock()
    private var entries: [String: (count: Int, nanoseconds: UInt64)] = [:]

    /// Times `body` under `name` when profiling is on; otherwise just runs it.
    @inline(__always)
    static func time<T>(_ name: @autoclosure () -> String, shape: @autoclosure () -> [Int] = [], _ body: () throws -> T) rethrows -> T {
        guard let profile = shared else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        profile.add(name(), shape(), DispatchTime.now().uptimeNanoseconds - start)
        return result
    }

    private func add(_ name: String, _ shape: [Int], _ ns: UInt64) {
        let key = shape.isEmpty ? name : "\(name) \(shape)"
        lock.lock()
        entries[key, default: (0, 0)].count += 1
        entries[key, default: (0, 0)].nanoseconds += ns
        lock.unlock()
    }

    private func report() {
        lock.lock()
        defer { lock.unlock() }
        let total = entries.values.reduce(0) { $0 + $1.nanoseconds }
        var text = "        ms    calls      %  kernel [output shape]\n"
        for (key, e) in entries.sorted(by: { $0.value.nanoseconds > $1.value.nanoseconds }) {
            let ms = Double(e.nanoseconds) / 1e6
            text += String(format: "%10.2f %8d %6.1f  ", ms, e.count, 100 * Double(e.nanoseconds) / Double(max(total, 1))) + key + "\n"
        }
        FileHandle.standardError.write(text.data(using: .utf8)!)
    }
}
