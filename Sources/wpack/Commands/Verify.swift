import ArgumentParser
import Foundation
import WPack

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every checksum and all padding of a .wpk file.",
        discussion: """
            Exit 0 when all is good; exit 1 naming the first bad tensor otherwise, or the first \
            tensor whose dtype comes from a newer format version than this wpack reads (its bytes \
            may be intact, but nothing here can read them).
            """)

    @Argument(help: "The .wpk file.")
    var file: String

    func run() throws {
        let start = Date()
        let store = try WeightStore(path: file)
        try store.verify()
        try store.checkUnchanged()
        // A newer minor version's dtype opens (it is listed) but cannot be read, so the file is
        // not good for this reader: unpack, embed and run would refuse it.
        if let unknown = store.infos.first(where: { $0.dtype == nil }) {
            throw CommandFailure("tensor '\(unknown.name)': dtype code \(unknown.dtypeCode) is from format "
                + "\(store.version.major).\(store.version.minor), newer than this wpack reads "
                + "(\(WPKFormat.majorVersion).\(WPKFormat.minorVersion)): its bytes check out, but it cannot be read here")
        }
        let bytes = store.infos.reduce(0) { $0 + $1.storedBytes }
        let milliseconds = String(format: "%.1f", Date().timeIntervalSince(start) * 1000)
        print("ok: \(store.infos.count) tensors, \(Terminal.formatBytes(bytes)) checked in \(milliseconds) ms")
    }
}
