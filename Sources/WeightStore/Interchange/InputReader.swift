import Foundation

/// Reads any input `wpack pack` accepts, chosen by what the path is: a folder (a model folder),
/// or a file by extension.
public enum InputReader {
    public static func read(path: String, policy: HalfPolicy = .widen) throws -> InputBundle {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InterchangeError(path, "no such file or folder")
        }
        if isDirectory.boolValue { return try ModelFolder.read(path: path, policy: policy) }
        let url = URL(fileURLWithPath: path)
        switch url.pathExtension.lowercased() {
        case "safetensors": return try Safetensors.read(path: path, policy: policy)
        case "npy": return try Npy.read(path: path, name: url.deletingPathExtension().lastPathComponent, policy: policy)
        case "npz": return try Npz.read(path: path, policy: policy)
        case "gguf": return try GGUF.read(path: path, policy: policy)
        case "bin", "pt", "pth", "ckpt":
            throw InterchangeError(path, "PyTorch pickle files are not read (they can run code); convert to .safetensors first")
        default:
            throw InterchangeError(path, "unknown input type '.\(url.pathExtension)': expected .safetensors, .npy, .npz, .gguf or a model folder")
        }
    }
}
