import Foundation

/// Reads any input `wpack pack` accepts, chosen by what the path is: a folder (a model folder),
/// or a file by extension.
public enum InputReader {
    /// Files in a model folder larger than this are not kept as metadata (they are weights or
    /// data, not configuration).
    public static let maxKeptFileSize = 8 << 20

    public static func read(path: String, policy: HalfPolicy = .widen) throws -> InputBundle {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InterchangeError(path, "no such file or folder")
        }
        if isDirectory.boolValue { return try readModelFolder(path: path, policy: policy) }
        let url = URL(fileURLWithPath: path)
        switch url.pathExtension.lowercased() {
        case "safetensors": return try Safetensors.read(path: path, policy: policy)
        case "npy": return try Npy.read(path: path, name: url.deletingPathExtension().lastPathComponent, policy: policy)
        case "npz": return try Npz.read(path: path, policy: policy)
        case "bin", "pt", "pth", "ckpt":
            throw InterchangeError(path, "PyTorch pickle files are not read (they can run code); convert to .safetensors first")
        default:
            throw InterchangeError(path, "unknown input type '.\(url.pathExtension)': expected .safetensors, .npy, .npz or a model folder")
        }
    }

    /// A model folder: every .safetensors file (sharded models too), plus its small text files
    /// (config.json, vocab.txt, tokenizer files, sentence-transformers configs) kept as
    /// metadata entries `file:RELATIVE/PATH`, so one .wpk holds the whole model.
    static func readModelFolder(path: String, policy: HalfPolicy) throws -> InputBundle {
        let root = URL(fileURLWithPath: path).standardizedFileURL
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.fileSizeKey, .isRegularFileKey],
                                                          options: [.skipsHiddenFiles]) else {
            throw InterchangeError(path, "cannot list the folder")
        }
        var weights: [String] = []
        var texts: [(String, URL)] = []
        for case let url as URL in walker {
            let values = try url.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey])
            guard values.isRegularFile == true else { continue }
            let relative = String(url.standardizedFileURL.path.dropFirst(root.path.count + 1))
            switch url.pathExtension.lowercased() {
            case "safetensors": weights.append(relative)
            case "json", "txt", "model":
                if (values.fileSize ?? 0) <= maxKeptFileSize { texts.append((relative, url)) }
            default: continue
            }
        }
        guard !weights.isEmpty else {
            throw InterchangeError(path, "no .safetensors file in this model folder")
        }
        var bundle = InputBundle()
        for relative in weights.sorted() {
            let part = try Safetensors.read(path: root.appendingPathComponent(relative).path, policy: policy)
            bundle.tensors += part.tensors
            bundle.metadata += part.metadata
        }
        for (relative, url) in texts.sorted(by: { $0.0 < $1.0 }) {
            let data = try Data(contentsOf: url)
            guard let text = String(data: data, encoding: .utf8), !text.utf8.contains(0) else { continue }
            bundle.metadata.append(("file:" + relative, .string(text)))
        }
        if let config = texts.first(where: { $0.0 == "config.json" }),
           let object = try? JSONSerialization.jsonObject(with: Data(contentsOf: config.1)) as? [String: Any],
           let type = object["model_type"] as? String {
            bundle.metadata.append(("model.type", .string(type)))
        }
        return bundle
    }
}
