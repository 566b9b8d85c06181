/// A misuse of the tensor API: shapes that do not fit an operation, an axis out of range, an
/// index outside a table. It names the operation and the shapes it was given.
///
/// Operations do not throw (`a + b` reads as arithmetic), so an error is reported where it
/// happens: inside `Tensor.withErrors { ... }` it is recorded and thrown when the closure
/// returns; anywhere else it stops the process with this same message, in release builds too
/// (a `precondition` says nothing there).
public struct TensorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation that refused its arguments ("matmul", "reshape", "attention", ...).
    public let op: String
    /// The shapes it was given, in argument order.
    public let shapes: [[Int]]
    /// What is wrong, in words.
    public let reason: String

    public init(op: String, shapes: [[Int]], reason: String) {
        self.op = op
        self.shapes = shapes
        self.reason = reason
    }

    public var description: String {
        let given = shapes.map { "\($0)" }.joined(separator: ", ")
        return shapes.isEmpty ? "\(op): \(reason)" : "\(op) of \(given): \(reason)"
    }
}

/// Where shape errors go while `Tensor.withErrors` runs: the first one is kept (later ones
/// usually follow from it) and thrown when the closure returns.
final class ErrorScope: Sendable {
    @TaskLocal static var current: ErrorScope?

    private let state = Locked<(first: TensorError?, count: Int)>((nil, 0))

    func record(_ error: TensorError) {
        state.withLock { s in
            if s.first == nil { s.first = error }
            s.count += 1
        }
    }

    var first: TensorError? { state.withLock { $0.first } }
}

extension Tensor {
    /// Runs `body`; a shape error inside it is thrown as a `TensorError` once the body returns,
    /// instead of stopping the process. After the first error, the failed operation and what is
    /// built on it are stand-ins: tensors of the shape the operation would have had (as far as
    /// it can be known) holding NaN, so the body runs on to its end without trapping. Throws
    /// the first error; errors thrown by the body itself pass through unchanged.
    public static func withErrors<T>(_ body: () throws -> T) throws -> T {
        let scope = ErrorScope()
        let value = try ErrorScope.$current.withValue(scope) { try body() }
        if let error = scope.first { throw error }
        return value
    }

    /// The async form.
    public static func withErrors<T>(
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
    ) async throws -> T {
        let scope = ErrorScope()
        let value = try await ErrorScope.$current.withValue(scope) { try await body() }
        if let error = scope.first { throw error }
        return value
    }

    /// Throws the first shape error recorded so far in the enclosing `withErrors`, so a long
    /// loop (a decode loop, say) can stop at once instead of running on stand-ins.
    public static func checkErrors() throws {
        if let error = ErrorScope.current?.first { throw error }
    }

    /// Reports `error`: recorded in the enclosing `withErrors`, or the end of the process.
    /// Returns the stand-in result, of shape `shape` (sanitised to a valid one).
    static func report(_ error: TensorError, shape: [Int]) -> Tensor {
        guard let scope = ErrorScope.current else { fatalError(error.description) }
        scope.record(error)
        return standIn(shape: shape)
    }

    /// Reports an error from code that returns no tensor (an accessor, an initialiser).
    static func reportValue(_ error: TensorError) {
        guard let scope = ErrorScope.current else { fatalError(error.description) }
        scope.record(error)
    }

    /// NaN over `shape`, as a broadcast of one constant: no memory, no kernel of its own.
    static func standIn(shape: [Int]) -> Tensor {
        var valid = Array(shape.prefix(maxRank).map { Swift.max($0, 0) })
        // A shape whose element count does not fit (the error may be that very shape) keeps
        // its rank with every axis 1, so nothing downstream overflows counting it.
        var count = 1, overflow = false
        for d in valid { (count, overflow) = count.multipliedReportingOverflow(by: Swift.max(d, 1)); if overflow { break } }
        if overflow { valid = valid.map { _ in 1 } }
        let one = Node(.constant(.nan), [], shape: [])
        return valid.isEmpty ? Tensor(node: one) : Tensor(node: Node(.view(.expand), [one], shape: valid))
    }

    /// Builds an operation whose checks throw; a failed check becomes a reported error whose
    /// stand-in has shape `fallback`.
    static func checked(_ fallback: @autoclosure () -> [Int], _ build: () throws(TensorError) -> Tensor) -> Tensor {
        do { return try build() } catch { return report(error, shape: fallback()) }
    }
}

/// A check inside an operation: throws the error naming the operation and its shapes.
@inline(__always)
func require(_ condition: Bool, _ op: @autoclosure () -> String, _ shapes: @autoclosure () -> [[Int]],
             _ reason: @autoclosure () -> String) throws(TensorError) {
    if !condition { throw TensorError(op: op(), shapes: shapes(), reason: reason()) }
}
