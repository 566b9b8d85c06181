import Foundation
import WPack

enum Terminal {
    /// Writes a line to stderr. Errors writing it are ignored: there is nowhere left to report
    /// them (FileHandle would trap on a closed descriptor instead).
    static func error(_ line: String) {
        Terminal.writeToStandardError(line + "\n")
    }

    static func writeToStandardError(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }

    /// A message as one line: embedded line breaks become " / ", control characters escapes.
    static func oneLine(_ message: String) -> String {
        message.split(whereSeparator: \.isNewline).map { DisplayText.escaped($0.trimmingCharacters(in: .whitespaces), backslash: false) }
            .filter { !$0.isEmpty }.joined(separator: " / ")
    }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }

    static func formatBytes(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal, at most ten times a
/// second. Thread-safe because sources may report from any thread.
final class ProgressBar: @unchecked Sendable {
    private let total: Int
    private let label: String
    private let unit: String?
    private var done = 0
    private var lastDraw = Date.distantPast
    private let lock = NSLock()

    init(label: String, total: Int, unit: String? = nil) {
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
    }

    func advance(_ bytes: Int) {
        lock.lock(); defer { lock.unlock() }
        done += bytes
        let now = Date()
        if now.timeIntervalSince(lastDraw) >= 0.1 || done >= total {
            lastDraw = now
            draw()
        }
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        Terminal.writeToStandardError("\r\u{1B}[K")
    }

    private func draw() {
        let fraction = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        // No %@ with Swift strings: on Linux that is undefined behaviour (it crashed in release).
        let line = "\r\(label) [\(bar)] " + String(format: "%3.0f%%", fraction * 100)
            + (unit.map { " \(done) / \(total) \($0)" } ?? " \(Terminal.formatBytes(done)) / \(Terminal.formatBytes(total))")
        Terminal.writeToStandardError(line)
    }
}
