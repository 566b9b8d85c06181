// swift-tools-version:6.0
import PackageDescription

// Release builds of the kernels want AVX2/FMA; that decision belongs to the lazy-engine
// work and is written in the README. Everything here builds for baseline x86-64.
let package = Package(
    name: "wpack",
    products: [
        .library(name: "WeightStore", targets: ["WeightStore"]),
        .library(name: "LazyTensor", targets: ["LazyTensor"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "WPack", targets: ["WPack"]),
        .executable(name: "wpack", targets: ["wpack"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries from Debian. The BLAS choice lives only in Sources/CBLAS.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),

        // The block primitives of the lazy engine, with AVX2+FMA and baseline versions chosen at
        // run time (no compiler flags needed, so the package also works as a dependency).
        .target(name: "CKernels",
                linkerSettings: [.linkedLibrary("mvec"), .linkedLibrary("m")]),
        // Process-level guards: the fault handler for mapped files, stdout's final status.
        .target(name: "CSystem"),
        .target(name: "LazyTensor", dependencies: ["CKernels", "CBLAS"]),
        .target(name: "WeightStore", dependencies: ["LazyTensor", "CKernels", "CSystem", "CZstd", "CXXHash", "CZlib"]),
        .target(name: "Models", dependencies: ["LazyTensor", "WeightStore"]),
        .target(name: "WPack", dependencies: ["LazyTensor", "WeightStore", "Models"]),
        .executableTarget(name: "wpack", dependencies: [
            "WPack", "CBLAS", "CSystem",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "LazyTensorTests", dependencies: ["LazyTensor"]),
        .testTarget(name: "WeightStoreTests", dependencies: ["WeightStore", "LazyTensor"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "WeightStore", "LazyTensor"]),
        .testTarget(name: "wpackTests", dependencies: ["wpack"]),
    ]
)
