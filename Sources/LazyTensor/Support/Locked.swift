#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a pthread mutex. Used instead of Synchronization's Mutex for every piece of
/// shared state in the package: that Mutex synchronises through futexes ThreadSanitizer cannot
/// see, so under `tools/sanitize thread` each correct use of it reads as a race, and real races
/// would hide among them. A pthread mutex is intercepted, so the sanitizer sees the order.
package final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    package init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// A fixed set of mutexes shared by many small objects (graph nodes), picked by address, so
/// that a node's cached result is guarded without a mutex of its own per node.
enum StripedLocks {
    private static let count = 64
    nonisolated(unsafe) private static let mutexes: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: count)
        for i in 0..<count { pthread_mutex_init(m + i, nil) }
        return m
    }()

    static func withLock<R>(for object: AnyObject, _ body: () throws -> R) rethrows -> R {
        // The address itself, not its hash: this runs for every node of every evaluation.
        let address = UInt(bitPattern: ObjectIdentifier(object))
        let mutex = mutexes + Int((address >> 4 ^ address >> 10) % UInt(count))
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
