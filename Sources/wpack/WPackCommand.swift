import ArgumentParser
import CSystem
import Foundation
import WPack

@main
struct WPackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wpack",
        abstract: "Pack, inspect and check .wpk weight stores; run the models they hold.",
        discussion: "Exit codes: 0 success, 1 bad input or failed check, 2 usage.",
        version: WPackCommand.version,
        subcommands: [Pack.self, Inspect.self, Verify.self, Unpack.self, Embed.self, Rerank.self, Run.self, Generate.self, Bench.self, Info.self])

    /// `wpack --version`: the format it writes, the CPU and the version each kernel family runs
    /// (`wpack info` has the rest).
    static var version: String {
        "wpack, .wpk format \(WPKFormat.majorVersion).\(WPKFormat.minorVersion)\n"
            + "cpu: \(CPU.model.isEmpty ? "unknown" : CPU.model); kernel level \(CPU.level) (detected \(CPU.detectedLevel))\n"
            + "kernels: " + CPU.kernelFamilies.map { "\($0.name): \($0.inUse)" }.joined(separator: "; ")
    }

    /// Exit codes are part of the interface: 1 for bad input, 2 for usage (ArgumentParser's own
    /// default for usage errors is 64, so errors are mapped here rather than left to it).
    static func main() {
        // A closed pipe ends wpack quietly, as it does any Unix tool; a mapped .wpk truncated
        // under it ends it with one line naming the file, not a crash.
        wpack_default_sigpipe()
        MappedFile.installFaultGuard()
        // The library ignores a WPACK_ISA or WPACK_ACTIVATIONS it does not know; the tool refuses it.
        if let problem = CPU.environmentProblem() ?? ActivationPrecision.environmentProblem() { fail(problem) }
        do {
            var command = try parseAsRoot()
            try command.run()
            finishOutput()
        } catch let failure as CommandFailure {
            fail(failure.message)
        } catch let error as WeightStoreError {
            fail(error.description)
        } catch let error as InterchangeError {
            fail(error.description)
        } catch let error as ModelError {
            fail(error.description)
        } catch let error as ChatTemplateError {
            fail(error.description)
        } catch let code as ExitCode {
            finishOutput()
            Foundation.exit(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                finishOutput()
                Foundation.exit(0)
            }
            let message = message(for: error)
            guard code == .validationFailure else {
                // Not a usage error: some other failure reached here (a file the system
                // refused, say). Still one line, and exit 1.
                fail(message.isEmpty ? String(describing: error) : message)
            }
            // One line: the reason and where the usage is, not the usage itself.
            let help = helpHint(for: CommandLine.arguments)
            Terminal.error("wpack: error: " + Terminal.oneLine(message) + " (see '\(help) --help')")
            Foundation.exit(2)
        }
    }

    /// "wpack SUBCOMMAND" when the arguments name one, else "wpack".
    static func helpHint(for arguments: [String]) -> String {
        let names = configuration.subcommands.map { $0._commandName }
        guard arguments.count > 1, names.contains(arguments[1]) else { return "wpack" }
        if arguments[1] == "bench", arguments.count > 2,
           Bench.configuration.subcommands.map({ $0._commandName }).contains(arguments[2]) {
            return "wpack bench \(arguments[2])"
        }
        return "wpack \(arguments[1])"
    }

    /// Everything printed must have reached stdout's file: a full disk or a closed descriptor
    /// is exit 1 with one line, never a quiet exit 0 with output missing.
    static func finishOutput() {
        let status = wpack_stdout_finish()
        if status == 0 { return }
        if status == EPIPE {
            // The reader went away: end as a Unix tool does when SIGPIPE stops it.
            raise(SIGPIPE)
            Foundation.exit(1)
        }
        Terminal.error("wpack: error: cannot write the output: " + String(cString: strerror(status)))
        Foundation.exit(1)
    }

    static func fail(_ message: String) -> Never {
        // Output already printed is flushed first, so it and the error keep their order.
        _ = wpack_stdout_finish()
        Terminal.error("wpack: error: " + Terminal.oneLine(message))
        Foundation.exit(1)
    }
}

/// A failure a command reports itself: one line, exit code 1.
struct CommandFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
