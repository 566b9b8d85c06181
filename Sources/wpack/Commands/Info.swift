import ArgumentParser
import Foundation
import WPack

/// The machine as wpack sees it: the CPU, its features, the kernel level in use (and why), the
/// version each kernel family runs, the BLAS and the engine's threads.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the CPU, its features and the kernel variants in use.")

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let detected = CPU.detectedLevel, level = CPU.level
        let families = CPU.kernelFamilies.map { ["name": $0.name, "in_use": $0.inUse.description, "levels": $0.levels.map(\.description)] }
        let row: [String: Any] = [
            "cpu": CPU.model, "features": CPU.features, "detected_level": detected.description, "level": level.description,
            "wpack_isa": ProcessInfo.processInfo.environment["WPACK_ISA"] ?? NSNull(), "kernels": families, "blas": CPU.blas,
            "workers": CPU.workers,
        ]
        try BenchReport.emit(row, json: json) {
            var lines = ["cpu: \(CPU.model.isEmpty ? "unknown" : CPU.model)",
                         "features: \(CPU.features.isEmpty ? "none of avx2, fma, f16c, avx512*" : CPU.features.joined(separator: " "))"]
            let why = CPU.requestedLevel.map { $0 < detected ? "capped by WPACK_ISA=\($0)" : "WPACK_ISA=\($0), which caps nothing here" }
                ?? "WPACK_ISA not set"
            lines.append("kernel level: \(level) (the CPU supports \(detected); \(why))")
            lines.append("kernels:")
            for f in CPU.kernelFamilies {
                lines.append("  \(f.name): \(f.inUse) (versions: \(f.levels.map(\.description).joined(separator: ", ")))")
            }
            lines.append("  matrix-vector products: \(CPU.blas)")
            lines.append("threads: \(CPU.workers) (WPACK_THREADS sets them)")
            return lines.joined(separator: "\n")
        }
    }
}
