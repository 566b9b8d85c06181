import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// What a product with a block-coded weight (q8_0, q4_0, q4_1) of more than 4 rows does with
/// its activations, where the machine has AVX-512 VNNI (elsewhere they stay float32):
///
/// - `.int16` (the default) rounds each row per block of 32 to int16, kept as two int8 halves,
///   and multiplies in integers: within max|x| / 32512 of each activation, as close to the
///   float product as the decode steps' int16, and about twice the speed of float32.
/// - `.int8` rounds to int8 (llama.cpp's q8_0 and q8_1 for activations): about 1.5 times the
///   speed of `.int16` and 128 times coarser, which models show. MiniLM's worst cosine to
///   PyTorch falls from 0.99958 to 0.99848 with q8_0 weights, the digits CNN misses one more
///   image, and SmolLM2 answers "What is the capital of France?" with "L'Étoile, ..." (as
///   llama.cpp, which rounds the same way, does) instead of "The capital of France is Paris."
/// - `.float` keeps float32 activations and decodes the weight's blocks to float32.
///
/// Decode steps of 1 to 4 rows round to int16 whatever the choice (coded_gemv.c). The calling
/// thread's choice (`with`) holds for the products it runs, on every worker;
/// WPACK_ACTIVATIONS=float|int8|int16, when set, overrides every choice.
public enum ActivationPrecision: String, Sendable, CaseIterable {
    case float
    case int8
    case int16

    /// The kernels' WK_ACT_ value.
    public var code: Int32 {
        switch self {
        case .float: Int32(WK_ACT_FLOAT)
        case .int8: Int32(WK_ACT_INT8)
        case .int16: Int32(WK_ACT_INT16)
        }
    }

    public init?(code: Int32) {
        guard let precision = Self.allCases.first(where: { $0.code == code }) else { return nil }
        self = precision
    }

    /// What the products on this thread use now.
    public static var current: ActivationPrecision { ActivationPrecision(code: wk_activations()) ?? .int16 }

    /// WPACK_ACTIVATIONS's value when it names a choice.
    public static var requested: ActivationPrecision? { ActivationPrecision(code: wk_activations_setting()) }

    /// Runs `body` with this thread's products using `precision` (unless WPACK_ACTIVATIONS says
    /// otherwise).
    public static func with<T>(_ precision: ActivationPrecision, _ body: () throws -> T) rethrows -> T {
        let previous = wk_scoped_activations()
        wk_scope_activations(precision.code)
        defer { wk_scope_activations(previous) }
        return try body()
    }

    /// An unknown WPACK_ACTIVATIONS: the library ignores it, so the tool refuses it.
    public static func environmentProblem() -> String? {
        guard wk_activations_setting() == -2, let value = getenv("WPACK_ACTIVATIONS") else { return nil }
        return "WPACK_ACTIVATIONS=\(String(cString: value)) is not a choice: use float, int8 or int16"
    }
}
