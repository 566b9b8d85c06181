import ArgumentParser
import Foundation
import WPack

struct Unpack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a .wpk file's tensors back out as .safetensors or .npz (byte-identical tensors).")

    @Argument(help: "The .wpk file.")
    var file: String

    @Option(name: .shortAndLong, help: "OUT.safetensors or OUT.npz.")
    var output: String

    func validate() throws {
        let ext = URL(fileURLWithPath: output).pathExtension.lowercased()
        guard ext == "safetensors" || ext == "npz" else {
            throw ValidationError("-o must end in .safetensors or .npz, not '\(output)'")
        }
    }

    func run() throws {
        if FileIdentity.same(file, output) { throw CommandFailure("the output '\(output)' is the input file") }
        let store = try WeightStore(path: file, verify: .onFirstTouch)
        if URL(fileURLWithPath: output).pathExtension.lowercased() == "npz" {
            try Npz.write(store, to: output)
        } else {
            try Safetensors.write(store, to: output)
        }
        print("wrote \(output): \(store.infos.count) tensors")
    }
}
