import ArgumentParser
import Foundation
import WPack

@main
struct WPackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wpack",
        abstract: "Pack, inspect and check .wpk weight stores; run the models they hold.",
        discussion: "Exit codes: 0 success, 1 bad input or failed check, 2 usage.",
        subcommands: [Pack.self, Inspect.self, Verify.self, Unpack.self, Embed.self, Rerank.self, Run.self, Bench.self])

    /// Exit codes are part of the interface: 1 for bad input, 2 for usage (ArgumentParser's own
    /// default for usage errors is 64, so errors are mapped here rather than left to it).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CommandFailure {
            fail(failure.message)
        } catch let error as WeightStoreError {
            fail(error.description)
        } catch let error as InterchangeError {
            fail(error.description)
        } catch let error as ModelError {
            fail(error.description)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            Terminal.error(fullMessage(for: error))
            Foundation.exit(2)
        }
    }

    static func fail(_ message: String) -> Never {
        Terminal.error("wpack: error: " + message)
        Foundation.exit(1)
    }
}

/// A failure a command reports itself: one line, exit code 1.
struct CommandFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
