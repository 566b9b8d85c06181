import ArgumentParser
import Foundation
import WPack

struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pack .safetensors, .npy, .npz, .gguf files or a model folder into one .wpk file.")

    @Argument(help: "Inputs: .safetensors, .npy, .npz, .gguf, or a model folder (config.json, model.safetensors, vocab.txt, ...).")
    var inputs: [String]

    @Option(name: .shortAndLong, help: "The .wpk file to write (replaced atomically if it exists).")
    var output: String

    @Option(help: "Alignment of every tensor: a power of two from 64 to 1048576, or 'page'.")
    var align: String = "64"

    @Option(help: "Compress every tensor with zstd: 'zstd' or 'zstd:LEVEL'. Compressed tensors cannot be mapped.")
    var compress: String?

    @Option(name: .customLong("meta"), help: "Metadata KEY=VALUE to store (repeatable).")
    var meta: [String] = []

    @Flag(help: "Keep float16/bfloat16 tensors as stored instead of widening them to float32.")
    var keepHalf = false

    @Option(help: "Store the linear layers' weight matrices as bf16, f16, q8 (q8_0), q4 (q4_0) or q4_1; matrix products read them in place.")
    var weights: String?

    @Option(help: "With --weights: store a tensor whose relative RMS error would exceed this in the next wider coding (q8_0, then bf16). By default every selected tensor takes the coding asked for.")
    var maxError: String?

    @Option(help: "With --weights: keep tensors matching this pattern (* and ?) in float32 (repeatable).")
    var keep: [String] = []

    @Option(help: "With --weights: also convert tensors matching this pattern, embeddings or norms say (repeatable).")
    var convert: [String] = []

    @Option(help: "A JSON layer list (see `wpack run`) stored as the model's description, for CNNs and MLPs.")
    var layers: String?

    func validate() throws {
        if inputs.isEmpty { throw ValidationError("give at least one input") }
        if let weights, WeightConversion.dtype(named: weights) == nil {
            throw ValidationError("--weights takes bf16, f16, q8, q4 or q4_1, not '\(weights)'")
        }
        if weights == nil && !(keep.isEmpty && convert.isEmpty && maxError == nil) { throw ValidationError("--keep, --convert and --max-error go with --weights") }
        if let maxError, !(Double(maxError).map { $0 > 0 && $0.isFinite } ?? false) {
            throw ValidationError("--max-error takes a positive number, not '\(maxError)'")
        }
    }

    func run() throws {
        let alignment: Int
        if align == "page" {
            alignment = WeightStoreWriter.pageSize
        } else if let a = Int(align), a >= WPKFormat.minAlignment, a <= WPKFormat.maxAlignment, a & (a - 1) == 0 {
            alignment = a
        } else {
            throw ValidationError("--align must be 'page' or a power of two from 64 to 1048576, not '\(align)'")
        }
        var codec = Codec.none
        var level = 3
        if let compress {
            let parts = compress.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.first == "zstd" else { throw ValidationError("--compress takes 'zstd' or 'zstd:LEVEL', not '\(compress)'") }
            codec = .zstd
            if parts.count == 2 {
                guard let l = Int(parts[1]), (1...22).contains(l) else {
                    throw ValidationError("zstd level must be 1 to 22, not '\(parts[1])'")
                }
                level = l
            }
        }
        var userMeta: [(String, String)] = []
        for item in meta {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw ValidationError("--meta takes KEY=VALUE, not '\(item)'")
            }
            userMeta.append((String(item[..<eq]), String(item[item.index(after: eq)...])))
        }
        // By device and inode: a symlink or a second path to the same file is the same file.
        for input in inputs where FileIdentity.same(input, output) {
            throw CommandFailure("the output '\(output)' is also an input")
        }

        var layerList: String?
        if let layers {
            guard let data = FileManager.default.contents(atPath: layers), let text = String(data: data, encoding: .utf8),
                  let object = try? JSONValue.parse(text), object["layers"]?.array != nil else {
                throw CommandFailure("--layers '\(layers)' is not a JSON object with a \"layers\" array")
            }
            layerList = text
        }
        var tensors: [InputTensor] = []
        var metadata: [(String, MetadataValue)] = []
        var seen: [String: String] = [:]
        var notes: [String] = []
        for input in inputs {
            let bundle = try InputReader.read(path: input, policy: keepHalf ? .keep : .widen)
            for t in bundle.tensors {
                if let other = seen[t.name] {
                    throw CommandFailure("tensor '\(t.name)' is in both '\(other)' and '\(input)'")
                }
                seen[t.name] = input
                tensors.append(t)
            }
            metadata += bundle.metadata
            notes += bundle.notes
        }

        // A model folder is checked by loading the result as wpack will load it, before the
        // output appears: it appears only if that passes.
        let writer = try WeightStoreWriter(path: output, options: .init(alignment: alignment, zstdLevel: level))
        for (key, value) in metadata { try writer.setMetadata(key, value) }
        for (key, value) in userMeta { try writer.setMetadata(key, .string(value)) }
        if let layerList { try writer.setMetadata(SequentialModel.metadataKey, .string(layerList)) }
        try writer.setMetadata("wpack.packed_from", .string(inputs.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ")))

        var conversionLines: [String] = []
        if let weights, let dtype = WeightConversion.dtype(named: weights) {
            let limit = maxError.flatMap(Double.init)
            // Before any work: a pattern that names nothing is a mistake in the command.
            for pattern in convert + keep where !tensors.contains(where: { Glob.matches(pattern, $0.name) }) {
                throw CommandFailure("the pattern '\(pattern)' matches no tensor")
            }
            let conversion = WeightConversion(dtype: dtype, keep: keep, convert: convert, maxRelativeError: limit)
            var converted: [WeightConversion.Converted] = []
            for (i, t) in tensors.enumerated() where try conversion.selects(t) {
                let c = try conversion.convert(t)
                tensors[i] = c.tensor
                converted.append(c)
                try writer.setMetadata(WeightConversion.metadataKey(t.name),
                                       .string("\(c.tensor.dtype) from \(t.dtype): \(c.error.description)"))
            }
            if converted.isEmpty { throw CommandFailure("--weights \(weights): no tensor to convert (2-D '...weight' matrices, or --convert PATTERN)") }
            let before = converted.reduce(0) { $0 + $1.originalBytes }, after = converted.reduce(0) { $0 + $1.tensor.byteCount }
            let worst = converted.max { $0.error.relativeRMS < $1.error.relativeRMS }!
            func bitsPerValue(_ d: DType) -> Int { 8 * d.byteSize / d.blockLength }
            let counts = Dictionary(grouping: converted, by: \.tensor.dtype).sorted { bitsPerValue($0.key) < bitsPerValue($1.key) }
                .map { "\($0.value.count) as \($0.key)" }.joined(separator: ", ")
            let widened = limit.map { " (relative RMS error above \($0) stored wider)" } ?? ""
            conversionLines.append("\(converted.count) tensors converted, \(counts)\(counts.contains(",") ? widened : ""): \(Terminal.formatBytes(before)) -> \(Terminal.formatBytes(after)); "
                                   + "worst relative RMS error \(String(format: "%.2e", worst.error.relativeRMS)) (\(DisplayText.escaped(worst.tensor.name))), "
                                   + "worst max abs error \(String(format: "%.2e", converted.map(\.error.maxAbsolute).max()!))")
        }

        let total = tensors.reduce(0) { $0 + $1.byteCount }
        let progress = total > 64 << 20 && Terminal.stderrIsTerminal ? ProgressBar(label: "packing", total: total) : nil
        for t in tensors {
            var source = t.source
            if let progress {
                let inner = t.source
                source = TensorSource { emit in
                    try inner.produce { chunk in
                        try emit(chunk)
                        progress.advance(chunk.count)
                    }
                }
            }
            try writer.addTensor(name: t.name, dtype: t.dtype, shape: t.shape, codec: codec, source: source)
        }
        defer { progress?.finish() }
        var summary: ModelSummary?
        try writer.finish { written in
            let found = ModelSummary(store: try WeightStore(path: written))
            summary = found
            if let problem = found.problem {
                throw CommandFailure("the model in '\(inputs.joined(separator: ", "))' would not run: \(problem)")
            }
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        print("wrote \(output): \(tensors.count) tensors, \(Terminal.formatBytes(size)), alignment \(alignment)")
        for line in conversionLines { print("  " + line) }
        for line in summary?.lines ?? [] { print("  " + line) }
        for note in notes { print("  " + note) }
        if let summary, !summary.runsWith.isEmpty { print("  runs with: " + summary.runsWith.map { "wpack " + $0 }.joined(separator: ", ")) }
    }
}
