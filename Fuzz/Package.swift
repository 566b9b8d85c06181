// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets over wpack's readers. Not part of the main package: they have no main of
// their own (libFuzzer provides it), so they build only with the fuzzer flags, which
// tools/fuzz passes:
//   swift build --package-path Fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
let package = Package(
    name: "wpack-fuzz",
    dependencies: [.package(name: "wpack", path: "..")],
    targets: [
        .executableTarget(name: "FuzzStore", dependencies: [.product(name: "WeightStore", package: "wpack")]),
    ]
)
