import ArgumentParser
import Foundation
import WPack

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a .wpk file's tensors and metadata (reads the header only).")

    @Argument(help: "The .wpk file.")
    var file: String

    @Flag(help: "Print JSON: {\"tensors\": [...], \"metadata\": {...}, \"alignment\": N}.")
    var json = false

    func run() throws {
        let store = try WeightStore(path: file)
        func conversion(_ name: String) -> String? {
            if case let .string(text)? = store.metadataValue(WeightConversion.metadataKey(name)) { return text }
            return nil
        }
        if json {
            let tensors: [[String: Any]] = store.infos.map { info in
                [
                    "name": info.name, "dtype": info.dtype?.name ?? "unknown(\(info.dtypeCode))",
                    "shape": info.shape, "offset": info.offset, "stored_bytes": info.storedBytes,
                    "raw_bytes": info.rawBytes, "codec": info.codec?.description ?? "unknown(\(info.codecCode))",
                    "checksum": info.checksumHex,
                ].merging(conversion(info.name).map { ["conversion": $0] } ?? [:]) { a, _ in a }
            }
            let object: [String: Any] = [
                "tensors": tensors, "metadata": store.metadata, "alignment": store.alignment,
                "version": "\(store.version.major).\(store.version.minor)", "file_size": store.file.bytes.count,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            try store.checkUnchanged()
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(file): wpk \(store.version.major).\(store.version.minor), \(store.infos.count) tensors, "
              + "\(Terminal.formatBytes(store.file.bytes.count)), alignment \(store.alignment)")
        // Names come from the file: escaped, so none can move the cursor or split a line.
        let names = store.infos.map { DisplayText.escaped($0.name) }
        let nameWidth = min(60, names.map(\.count).max() ?? 4)
        for (info, shownName) in zip(store.infos, names) {
            let shape = "[" + info.shape.map(String.init).joined(separator: ", ") + "]"
            let codec = info.codec == Codec.none ? "" : "  zstd \(Terminal.formatBytes(info.storedBytes))"
            let error = conversion(info.name).map { "  " + DisplayText.escaped($0) } ?? ""
            let name = shownName.padding(toLength: max(nameWidth, shownName.count), withPad: " ", startingAt: 0)
            print("  \(name)  \((info.dtype?.name ?? "?").padding(toLength: 8, withPad: " ", startingAt: 0)) "
                  + "\(shape.padding(toLength: 16, withPad: " ", startingAt: 0)) \(Terminal.formatBytes(info.rawBytes).padding(toLength: 10, withPad: " ", startingAt: 0)) @\(info.offset)  xxh3 \(info.checksumHex)\(codec)\(error)")
        }
        let shownMetadata = store.typedMetadata.filter { !$0.key.hasPrefix("wpack.conversion:") }
        if !shownMetadata.isEmpty {
            print("metadata:")
            for (key, value) in shownMetadata {
                let text = value.description
                let shown = key.hasPrefix("file:") || text.count > 80 || text.contains("\n")
                    ? "(\(text.utf8.count) bytes)" : DisplayText.escaped(text)
                print("  \(DisplayText.escaped(key)) = \(shown)")
            }
        }
        try store.checkUnchanged()
    }
}
