import Foundation

/// A model folder as `wpack pack` reads it: a Hugging Face or sentence-transformers folder, or
/// a hub cache snapshot (a folder of symlinks into the cache's blobs, followed here).
///
/// Every .safetensors file is read (sharded models too); one in a subfolder (a
/// sentence-transformers Dense module's 2_Dense/model.safetensors) has its tensors named
/// under the subfolder ("2_Dense/linear.weight"), so modules cannot collide. Text files
/// (.json, .txt, .model, .jinja) are kept whole as metadata `file:RELATIVE/PATH`, whatever their
/// size, so one .wpk holds the whole model; a file that is not UTF-8 text is left out and said so.
public enum ModelFolder {
    static let keptExtensions: Set<String> = ["json", "txt", "model", "jinja"]

    public static func read(path: String, policy: HalfPolicy) throws -> InputBundle {
        let root = URL(fileURLWithPath: path).standardizedFileURL
        var weights: [(String, URL)] = []
        var texts: [(String, URL)] = []
        var bundle = InputBundle()
        try walk(root, relative: "", depth: 0) { relative, url in
            // The link's name, not its target's: a hub snapshot's blobs are named by their hash.
            switch (relative as NSString).pathExtension.lowercased() {
            case "safetensors": weights.append((relative, url))
            case let ext where keptExtensions.contains(ext): texts.append((relative, url))
            default: break
            }
        }
        guard !weights.isEmpty else {
            throw InterchangeError(path, "no .safetensors file in this model folder")
        }
        for (relative, url) in weights.sorted(by: { $0.0 < $1.0 }) {
            var part = try Safetensors.read(path: url.path, policy: policy)
            let folder = (relative as NSString).deletingLastPathComponent
            if !folder.isEmpty {
                for i in part.tensors.indices { part.tensors[i].name = folder + "/" + part.tensors[i].name }
            }
            bundle.tensors += part.tensors
            bundle.metadata += part.metadata
        }
        for (relative, url) in texts.sorted(by: { $0.0 < $1.0 }) {
            let data: Data
            do { data = try Data(contentsOf: url) } catch { throw InterchangeError(url.path, "cannot be read: \(error.localizedDescription)") }
            guard let text = String(data: data, encoding: .utf8), !text.utf8.contains(0) else {
                bundle.notes.append("left out \(relative): not UTF-8 text")
                continue
            }
            bundle.metadata.append(("file:" + relative, .string(text)))
        }
        if let config = texts.first(where: { $0.0 == "config.json" }),
           let object = try? JSONSerialization.jsonObject(with: Data(contentsOf: config.1)) as? [String: Any],
           let type = object["model_type"] as? String {
            bundle.metadata.append(("model.type", .string(type)))
        }
        return bundle
    }

    /// Visits the regular files under `url`, following symlinks (a hub snapshot's files are
    /// links into ../../blobs), skipping hidden entries; a link cycle is cut by the depth limit.
    static func walk(_ url: URL, relative: String, depth: Int, _ visit: (String, URL) throws -> Void) throws {
        guard depth < 16 else { throw InterchangeError(url.path, "folders nested deeper than 16 (a symlink loop?)") }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: url.path) } catch {
            throw InterchangeError(url.path, "cannot list the folder")
        }
        for name in names.sorted() where !name.hasPrefix(".") {
            let child = url.appendingPathComponent(name)
            let rel = relative.isEmpty ? name : relative + "/" + name
            var isDirectory: ObjCBool = false
            // fileExists follows symlinks: a dangling link is reported as missing.
            guard FileManager.default.fileExists(atPath: child.path, isDirectory: &isDirectory) else {
                throw InterchangeError(child.path, "is a broken symlink (a hub snapshot whose blob was not downloaded?)")
            }
            if isDirectory.boolValue {
                try walk(child, relative: rel, depth: depth + 1, visit)
            } else {
                try visit(rel, child.resolvingSymlinksInPath())
            }
        }
    }
}
