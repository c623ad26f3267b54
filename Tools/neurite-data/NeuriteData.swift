import ArgumentParser
import Datasets
import Foundation

/// `neurite-data`: look inside data files, and turn IDX data sets into image folders and back.
///
/// ```sh
/// neurite-data inspect t10k-images-idx3-ubyte.gz digit.png
/// neurite-data export --images t10k-images-idx3-ubyte.gz --labels t10k-labels-idx1-ubyte.gz --output digits --limit 100
/// neurite-data import digits --images digits-images.idx.gz --labels digits-labels.idx.gz --size 28x28 --channels 1
/// ```
///
/// Every failure prints one clear line to standard error and exits with status 1 (usage errors
/// exit with 64, through ArgumentParser); no input makes it crash.
@main
struct NeuriteData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neurite-data",
        abstract: "Inspect IDX, PNG and JPEG files; turn IDX data sets into folders of PNG files and back.",
        subcommands: [Inspect.self, Export.self, Import.self, Predict.self]
    )
}

/// Writes `line` and a newline to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Runs a subcommand's work: a `DatasetError` (or any other failure of the work itself) becomes
/// one line on standard error and exit status 1, instead of ArgumentParser's usage text.
func reportingFailures(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as DatasetError {
        printError("neurite-data: error: \(error)")
        throw ExitCode.failure
    } catch {
        printError("neurite-data: error: \(error)")
        throw ExitCode.failure
    }
}

/// `"28x28"` (height x width) as a size; `nil` for anything else.
func parseSize(_ text: String) -> (height: Int, width: Int)? {
    let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
    guard parts.count == 2, let height = Int(parts[0]), let width = Int(parts[1]),
          height > 0, width > 0, height <= 1 << 15, width <= 1 << 15 else { return nil }
    return (height, width)
}

/// Whether a path names an IDX file to be gzip-compressed (it ends in `.gz`).
func wantsGzip(_ path: String) -> Bool {
    path.lowercased().hasSuffix(".gz")
}
