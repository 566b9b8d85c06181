import Foundation
import Testing
@testable import LazyTensor

/// Shape errors are catchable inside `Tensor.withErrors` and name the operation and the shapes;
/// outside it they stop the process with the same message, in release builds too (checked by
/// the wpack tests, which run a child process).
@Suite struct TensorErrorTests {
    /// The misuses a new user ran into, each with the operation its error must name.
    static let misuses: [(String, @Sendable () -> Tensor)] = [
        ("add", { Tensor.zeros(shape: [2, 3]) + Tensor.zeros(shape: [4]) }),
        ("matmul", { matmul(Tensor.zeros(shape: [2, 3]), Tensor.zeros(shape: [4, 5])) }),
        ("matmul", { matmul(Tensor.zeros(shape: [2, 2, 3]), Tensor.zeros(shape: [3, 3, 1])) }),
        ("reshape", { Tensor.zeros(shape: [2, 3]).reshaped([4, 2]) }),
        ("reshape", { Tensor.zeros(shape: [2, 3]).reshaped([-1, -1]) }),
        ("permute", { Tensor.zeros(shape: [2, 3]).permuted([0, 0]) }),
        ("transpose", { Tensor.zeros(shape: [3]).transposed() }),
        ("expand", { Tensor.zeros(shape: [2, 3]).expanded(to: [4, 3, 2]) }),
        ("slice", { Tensor.zeros(shape: [2, 3]).sliced(axis: 1, range: 1..<9) }),
        ("slice", { Tensor.zeros(shape: [2, 3]).sliced(axis: 5, range: 0..<1) }),
        ("squeeze", { Tensor.zeros(shape: [2, 3]).squeezed(axis: 0) }),
        ("sum", { Tensor.zeros(shape: [2, 3]).sum(axes: [2]) }),
        ("max", { Tensor.zeros(shape: [0, 3]).max(axis: 0) }),
        ("argmax", { Tensor.zeros(shape: [2, 3]).argmax(axis: -3) }),
        ("softmax", { Tensor.zeros(shape: [2, 3]).softmax(axis: 2) }),
        ("layerNorm", { Tensor.zeros(shape: [2, 3]).layerNorm(weight: Tensor.ones(shape: [4])) }),
        ("gather", { Tensor.zeros(shape: [5, 2]).gatherRows([1, 7]) }),
        ("concatenate", { Tensor.concatenate([Tensor.zeros(shape: [2, 3]), Tensor.zeros(shape: [2, 4])], axis: 0) }),
        ("pad", { Tensor.zeros(shape: [2, 3]).padded([(1, 1)]) }),
        ("conv2d", { conv2d(Tensor.zeros(shape: [1, 3, 8, 8]), Tensor.zeros(shape: [4, 2, 3, 3])) }),
        ("conv2d", { conv2d(Tensor.zeros(shape: [1, 3, 2, 2]), Tensor.zeros(shape: [4, 3, 3, 3])) }),
        ("maxPool2d", { Tensor.zeros(shape: [1, 3, 8]).maxPool2d(kernel: (2, 2)) }),
        ("attention", { scaledDotProductAttention(Tensor.zeros(shape: [1, 2, 3, 4]), Tensor.zeros(shape: [1, 2, 3, 5]),
                                                  Tensor.zeros(shape: [1, 2, 3, 4])) }),
        ("einsum 'ij,jk->ik'", { einsum("ij,jk->ik", Tensor.zeros(shape: [2, 3]), Tensor.zeros(shape: [4, 5])) }),
        ("einsum 'ij,jk'", { einsum("ij,jk", Tensor.zeros(shape: [2, 3])) }),
        ("where", { Tensor.select(Tensor.zeros(shape: [2]), Tensor.zeros(shape: [3]), Tensor.zeros(shape: [2])) }),
    ]

    @Test func everyMisuseThrowsNamingTheOpAndShapes() {
        for (op, misuse) in Self.misuses {
            let error = #expect(throws: TensorError.self, "\(op)") {
                try Tensor.withErrors { misuse().materialized() }
            }
            #expect(error?.op == op, "\(String(describing: error))")
            #expect(error?.shapes.isEmpty == false, "\(op)")
            #expect(error.map { $0.description.hasPrefix(op) } == true)
        }
    }

    @Test func theMessageNamesTheShapes() throws {
        let error = #expect(throws: TensorError.self) {
            try Tensor.withErrors { matmul(Tensor.zeros(shape: [2, 3]), Tensor.zeros(shape: [4, 5])) }
        }
        #expect(error?.description == "matmul of [2, 3], [4, 5]: the inner dimensions differ (3 and 4)")
    }

    /// After the first error the body runs on to its end over stand-ins (no trap, even when it
    /// reads shapes and values), and the first error is the one thrown.
    @Test func theBodyRunsOnAndTheFirstErrorWins() {
        var reachedTheEnd = false
        let error = #expect(throws: TensorError.self) {
            try Tensor.withErrors {
                let x = Tensor.zeros(shape: [2, 3]).reshaped([5])
                let y = matmul(x, Tensor.zeros(shape: [7, 2]))  // a second error
                _ = y.shape[0]
                _ = (y + 1).materialized().scalars
                reachedTheEnd = true
            }
        }
        #expect(error?.op == "reshape")
        #expect(reachedTheEnd)
    }

    /// A stand-in never has a shape whose element count overflows, even when that shape was
    /// the error.
    @Test func absurdShapesStandInSafely() {
        let error = #expect(throws: TensorError.self) {
            try Tensor.withErrors {
                let t = Tensor.zeros(shape: [2, 3]).reshaped([Int.max, 4])
                _ = (t + 1).scalarCount
                _ = Tensor.zeros(shape: [2]).expanded(to: [1 << 40, 1 << 40, 2]).sum().item  // refused too
            }
        }
        #expect(error?.op == "reshape")
        for make in [{ _ = Tensor.zeros(shape: [1 << 40, 1 << 40]) }, { _ = Tensor.randn(shape: [-1]) },
                     { _ = Tensor(shape: [Int.max, 3], scalars: [1]) }] as [() -> Void] {
            #expect(throws: TensorError.self) { try Tensor.withErrors { make() } }
        }
    }

    @Test func checkErrorsStopsEarly() {
        var steps = 0
        #expect(throws: TensorError.self) {
            try Tensor.withErrors {
                for i in 0..<100 {
                    _ = Tensor.zeros(shape: [2]).reshaped([i == 3 ? 5 : 2])
                    try Tensor.checkErrors()
                    steps += 1
                }
            }
        }
        #expect(steps == 3)
    }

    @Test func correctCodeDoesNotThrowAndReturnsItsValue() throws {
        let y = try Tensor.withErrors { (Tensor.ones(shape: [2, 3]) * 2).sum().item }
        #expect(y == 12)
    }

    @Test func errorsThrownByTheBodyPassThrough() {
        struct Mine: Error {}
        #expect(throws: Mine.self) { try Tensor.withErrors { throw Mine() } }
    }

    @Test func nestedScopesCatchTheirOwn() throws {
        try Tensor.withErrors {
            #expect(throws: TensorError.self) { try Tensor.withErrors { _ = Tensor.zeros(shape: [2]).reshaped([3]) } }
            _ = Tensor.zeros(shape: [2]).reshaped([2])
        }
    }

    @Test func asyncForm() async {
        await #expect(throws: TensorError.self) {
            try await Tensor.withErrors { () async in _ = Tensor.zeros(shape: [2]).reshaped([3]) }
        }
    }
}

/// Outside `withErrors`, a shape error ends the process with the error's own message.
@Suite struct UncaughtTensorErrorTests {
    @Test func stopsTheProcessWithTheMessage() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = matmul(Tensor.zeros(shape: [2, 3]), Tensor.zeros(shape: [4, 5]))
        }
        let text = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(text.contains("matmul of [2, 3], [4, 5]: the inner dimensions differ (3 and 4)"), "\(text)")
    }
}
