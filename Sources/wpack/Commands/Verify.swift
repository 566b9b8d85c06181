import ArgumentParser
import Foundation
import WPack

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every checksum and all padding of a .wpk file.",
        discussion: "Exit 0 when all is good; exit 1 naming the first bad tensor otherwise.")

    @Argument(help: "The .wpk file.")
    var file: String

    func run() throws {
        let start = Date()
        let store = try WeightStore(path: file)
        try store.verify()
        try store.checkUnchanged()
        let bytes = store.infos.reduce(0) { $0 + $1.storedBytes }
        let milliseconds = String(format: "%.1f", Date().timeIntervalSince(start) * 1000)
        print("ok: \(store.infos.count) tensors, \(Terminal.formatBytes(bytes)) checked in \(milliseconds) ms")
    }
}
