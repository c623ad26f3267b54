// neurite-fuzz: a seeded mutation fuzzer for the IDX, PNG and JPEG readers of the Datasets module
// and the .keras readers of KerasInterop (zip container and HDF5 weights; see KerasTargets.swift).
//
//   swift run -c release neurite-fuzz [--target idx|png|jpeg|keras-archive|keras-h5|all] [--seed N]
//       [--iterations N | --seconds S] [--corpus DIR] [--save-crashes DIR]
//       [--time-budget S] [--hang-seconds S] [--progress S]
//   swift run -c release neurite-fuzz --replay FILE... [--target idx|png|jpeg|keras-archive|keras-h5]
//
// Each input is a real file (or a small IDX file made here) changed by one to eight mutations,
// format-blind (bit flips, edge values, inserted, deleted or duplicated pieces, truncation,
// splicing) or format-aware (PNG chunks with their CRC fixed, JPEG markers, IDX headers, gzip
// rebuilt around a mutated IDX). Every call must return a value that passes consistency checks
// or throw a documented `DatasetError`; anything else (another error, an undocumented kind, a
// wrong result, a signal, an input that takes more CPU time than the time budget, a hang: more
// CPU time than --hang-seconds, or six times that in wall time) is a finding, saved to the crash
// folder. Budgets count CPU time because on a shared machine wall time also counts waiting.
// Inputs that end in an outcome not seen before join the corpus, a cheap stand-in for coverage
// feedback. The same seed and iteration count give the same inputs.
//
// Memory errors in the C shims: build with AddressSanitizer and run with abort_on_error, so a
// report ends in SIGABRT and the input is saved:
//   swift build -c debug --sanitize=address --product neurite-fuzz
//   ASAN_OPTIONS=abort_on_error=1 .build/debug/neurite-fuzz --seconds 600
import Datasets
import Foundation
import TensorCore

struct FuzzOptions {
    var seed: UInt64 = 1
    var iterations: Int?
    var seconds: Double?
    var targets: [FuzzTarget] = FuzzTarget.allCases
    var corpus: String?
    var saveDirectory = temporaryDirectory() + "/neurite-fuzz-findings"
    /// CPU seconds one input may take before it is a "slow" finding.
    var timeBudget = 1.0
    var hangSeconds = 20.0
    var progressSeconds = 30.0
    var listOutcomes = 0
    var replay: [String] = []
}

func usage(_ problem: String) -> Never {
    let text = """
    neurite-fuzz: \(problem)
    usage: neurite-fuzz [--target idx|png|jpeg|keras-archive|keras-h5|all] [--seed N] [--iterations N | --seconds S]
                        [--corpus DIR] [--save-crashes DIR] [--time-budget S] [--hang-seconds S] [--progress S]
                        [--list-outcomes N]
           neurite-fuzz --replay FILE... [--target idx|png|jpeg|keras-archive|keras-h5]

    """
    FileHandle.standardError.write(text.data(using: .utf8)!)
    exit(2)
}

/// `value`, or the usage message with `problem` when it is nil.
func required<T>(_ value: T?, _ problem: String) -> T {
    guard let value else { usage(problem) }
    return value
}

func parseOptions() -> FuzzOptions {
    var options = FuzzOptions()
    var args = Array(CommandLine.arguments.dropFirst())
    func value(_ flag: String) -> String {
        guard !args.isEmpty else { usage("\(flag) needs a value") }
        return args.removeFirst()
    }
    while !args.isEmpty {
        let flag = args.removeFirst()
        switch flag {
        case "--seed": options.seed = required(UInt64(value(flag)), "--seed takes a non-negative integer")
        case "--iterations": options.iterations = required(Int(value(flag)).flatMap { $0 > 0 ? $0 : nil }, "--iterations takes a positive integer")
        case "--seconds": options.seconds = required(Double(value(flag)).flatMap { $0 > 0 ? $0 : nil }, "--seconds takes a positive number")
        case "--target":
            let name = value(flag)
            if name == "all" { options.targets = FuzzTarget.allCases } else {
                options.targets = [required(FuzzTarget(rawValue: name), "unknown target \(name)")]
            }
        case "--corpus": options.corpus = value(flag)
        case "--save-crashes": options.saveDirectory = value(flag)
        case "--time-budget": options.timeBudget = required(Double(value(flag)), "--time-budget takes seconds")
        case "--hang-seconds": options.hangSeconds = required(Double(value(flag)), "--hang-seconds takes seconds")
        case "--progress": options.progressSeconds = required(Double(value(flag)), "--progress takes seconds")
        case "--list-outcomes": options.listOutcomes = required(Int(value(flag)), "--list-outcomes takes a count")
        case "--replay":
            while let next = args.first, !next.hasPrefix("--") { options.replay.append(args.removeFirst()) }
            if options.replay.isEmpty { usage("--replay needs at least one file") }
        case "-h", "--help": usage("a seeded mutation fuzzer for the IDX, PNG, JPEG and .keras readers")
        default: usage("unknown option \(flag)")
        }
    }
    if options.iterations == nil && options.seconds == nil { options.iterations = 10_000 }
    return options
}

/// `../shared/data` beside the repository (found from this file's path), or from the working directory.
func defaultCorpus() -> String {
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    for candidate in [repository.appendingPathComponent("../shared/data").standardized.path,
                      FileManager.default.currentDirectoryPath + "/../shared/data"]
    where FileManager.default.fileExists(atPath: candidate + "/pngsuite") {
        return candidate
    }
    return repository.appendingPathComponent("../shared/data").standardized.path
}

func seconds() -> Double { Double(monotonicNanos()) * 1e-9 }

/// Everything one target's run accumulates.
final class TargetRun {
    let target: FuzzTarget
    let seedCount: Int
    var corpus: [FuzzInput]
    /// How often each outcome (kind and digit-free message, or the kind of file accepted) was seen.
    var outcomes: [String: Int] = [:]
    var inputs = 0
    var accepted = 0
    var rejected: [String: Int] = [:]
    var findings: [String: Int] = [:]
    var mutations: [String: Int] = [:]
    /// The most CPU time one input took (process CPU time, so work on pool threads counts), and
    /// its number; wall time is kept too, but on a shared machine it also counts time spent waiting.
    var slowest = 0.0
    var slowestIteration = -1
    var slowestWall = 0.0
    var busySeconds = 0.0
    static let corpusCap = 4000

    init(target: FuzzTarget, seeds: [Corpus.Seed]) {
        self.target = target
        corpus = seeds.map(\.input)
        seedCount = seeds.count
    }

    /// Input number `i`: the seeds themselves first, then mutants drawn from `(seed, target, i)`.
    func makeInput(_ i: Int, seed: UInt64, limit: Int) -> (FuzzInput, [String], Dice) {
        let stream = UInt64(FuzzTarget.allCases.firstIndex(of: target)!) << 48 | UInt64(i)
        var dice = Dice(seed: seed, stream: stream)
        if i < seedCount { return (corpus[i], ["seed"], dice) }
        var input = corpus[dice.below(corpus.count)]
        var applied: [String] = []
        for _ in 0..<dice.pick([1, 1, 1, 2, 2, 3, 4, 8]) {
            var name: String?
            if dice.chance(1, in: 2) {
                switch target {
                case .png: name = PNGMutations.mutate(&input.bytes, dice: &dice); if name != nil { input.inner = nil }
                case .jpeg: name = JPEGMutations.mutate(&input.bytes, dice: &dice)
                case .idx: name = IDXMutations.mutate(&input, limit: limit, dice: &dice)
                case .kerasArchive: name = KerasArchiveMutations.mutate(&input.bytes, dice: &dice)
                case .kerasH5: name = KerasH5Mutations.mutate(&input.bytes, dice: &dice)
                }
            }
            if name == nil {
                let other = corpus[dice.below(corpus.count)].bytes
                name = Havoc.names[Havoc.mutate(&input.bytes, other: other, dice: &dice).mutation]
                input.inner = nil
            }
            applied.append(name!)
        }
        // Keep inputs small enough to stay fast (the limits refuse bigger files anyway).
        if input.bytes.count > 1 << 21 { input.bytes.removeLast(input.bytes.count - (1 << 21)) }
        return (input, applied, dice)
    }
}

extension Dice {
    init(seed: UInt64, stream: UInt64) { generator = SeededGenerator(seed: seed, stream: stream) }
}

// MARK: - Replay

func replay(_ paths: [String], options: FuzzOptions, runner: Runner) -> Int32 {
    var failed = false
    for path in paths {
        guard let bytes = readFile(path) else { print("\(path): cannot read"); failed = true; continue }
        let target: FuzzTarget
        if options.targets.count == 1 { target = options.targets[0] } else {
            switch ImageFormat(sniffing: bytes) {
            case .png?: target = .png
            case .jpeg?: target = .jpeg
            case nil where bytes.starts(with: [0x50, 0x4B]): target = .kerasArchive
            case nil where bytes.starts(with: [0x89, 0x48, 0x44, 0x46]): target = .kerasH5
            case nil: target = .idx
            }
        }
        for channels in target == .png || target == .jpeg ? [nil, 1, 3, 4] : [nil] as [Int?] {
            CrashGuard.hold(bytes, target: target, iteration: 0)
            let t0 = seconds()
            CrashGuard.begin()
            let verdict = runner.run(target, bytes, channels: channels, scaled: true)
            CrashGuard.end()
            let ms = (seconds() - t0) * 1e3
            let label = channels.map { "channels \($0)" } ?? "channels nil"
            switch verdict {
            case .finding(let kind, let detail):
                failed = true
                print("\(path) [\(target), \(label)]: FINDING \(kind): \(detail) (\(String(format: "%.2f", ms)) ms)")
            default:
                print("\(path) [\(target), \(label)]: \(verdict.signature) (\(String(format: "%.2f", ms)) ms)")
            }
        }
    }
    return failed ? 1 : 0
}

// MARK: - Fuzzing

let options = parseOptions()
let runner = Runner()
defer { runner.removeTemporaryFile() }
do {
    try FileManager.default.createDirectory(atPath: options.saveDirectory, withIntermediateDirectories: true)
} catch {
    usage("cannot create \(options.saveDirectory): \(error)")
}
CrashGuard.install(directory: options.saveDirectory, seed: options.seed)
CrashGuard.temporaryFile = strdup(runner.idxPath)
CrashGuard.startWatchdog(limit: options.hangSeconds)

if !options.replay.isEmpty {
    let status = replay(options.replay, options: options, runner: runner)
    runner.removeTemporaryFile()
    exit(status)
}

let corpusRoot = options.corpus ?? defaultCorpus()
var runs: [TargetRun] = []
for target in options.targets {
    let seeds: [Corpus.Seed]
    do {
        seeds = try Corpus.seeds(for: target, root: corpusRoot)
    } catch {
        usage("cannot build the \(target) corpus: \(error)")
    }
    guard !seeds.isEmpty else { usage("no \(target) seed files under \(corpusRoot)") }
    if target == .idx {
        let problems = Corpus.selfCheck(runner: runner, idxSeeds: seeds)
        guard problems.isEmpty else { usage("harness self-check failed:\n  " + problems.joined(separator: "\n  ")) }
    }
    runs.append(TargetRun(target: target, seeds: seeds))
}
print("neurite-fuzz: seed \(options.seed), targets \(runs.map(\.target.rawValue).joined(separator: ",")), "
      + (options.seconds.map { "\($0) s" } ?? "\(options.iterations!) inputs per target")
      + ", corpus \(corpusRoot) (\(runs.map { "\($0.target): \($0.seedCount) seeds" }.joined(separator: ", "))), findings to \(options.saveDirectory)")

let idxLimit = runner.idxLimits.maxBytes
let start = seconds()
var nextProgress = start + options.progressSeconds
var totalFindings = 0
fuzzing: while true {
    for run in runs {
        if let n = options.iterations, run.inputs >= n { continue }
        let i = run.inputs
        var (input, applied, dice) = run.makeInput(i, seed: options.seed, limit: idxLimit)
        let channels: Int? = dice.pick([nil, nil, 1, 3, 4])
        let scaled = dice.chance(7, in: 8)

        CrashGuard.hold(input.bytes, target: run.target, iteration: i)
        let t0 = seconds(), cpu0 = processCPUNanos()
        CrashGuard.begin()
        var verdict = runner.run(run.target, input.bytes, channels: channels, scaled: scaled)
        CrashGuard.end()
        let wall = seconds() - t0
        let elapsed = Double(processCPUNanos() - cpu0) * 1e-9

        run.inputs += 1
        run.busySeconds += elapsed
        run.slowestWall = max(run.slowestWall, wall)
        for name in applied { run.mutations[name, default: 0] += 1 }
        if elapsed > run.slowest {
            run.slowest = elapsed
            run.slowestIteration = i
        }
        if elapsed > options.timeBudget {
            if case .finding = verdict {} else {
                verdict = .finding(kind: "slow", detail: String(format: "took %.3f s of CPU time (%.3f s wall), over the time budget of %.3f s",
                                                                elapsed, wall, options.timeBudget) + " (\(verdict.signature))")
            }
        }
        switch verdict {
        case .accepted:
            run.accepted += 1
        case .rejected(let kind, _):
            run.rejected[kind, default: 0] += 1
        case .finding(let kind, let detail):
            run.findings[kind, default: 0] += 1
            totalFindings += 1
            let path = CrashGuard.saveHeld(kind: "finding").map { String(cString: $0) } ?? "(not saved)"
            print("FINDING \(kind) [\(run.target) input \(i), channels \(String(describing: channels)), scaled \(scaled), "
                  + "mutations \(applied.joined(separator: "+"))]: \(detail)\n  saved to \(path)")
        }
        let signature = verdict.signature
        run.outcomes[signature, default: 0] += 1
        if run.outcomes[signature] == 1 {
            // Inputs that no longer look like the target's format never reach its decoder: mutating
            // them further is wasted, however new their error message.
            let reachesDecoder = [.idx, .kerasArchive, .kerasH5].contains(run.target) || ImageFormat(sniffing: input.bytes).map { $0.rawValue == run.target.rawValue } == true
            if i >= run.seedCount && input.bytes.count <= 1 << 18 && reachesDecoder {
                if run.corpus.count < TargetRun.corpusCap {
                    run.corpus.append(input)
                } else {
                    run.corpus[run.seedCount + dice.below(TargetRun.corpusCap - run.seedCount)] = input
                }
            }
        }
    }
    let now = seconds()
    if CrashGuard.stopRequested.load(ordering: .relaxed) {
        print("neurite-fuzz: stopped by a signal after \(String(format: "%.1f", now - start)) s")
        break fuzzing
    }
    if let limit = options.seconds, now - start >= limit { break fuzzing }
    if let n = options.iterations, runs.allSatisfy({ $0.inputs >= n }) { break fuzzing }
    if now >= nextProgress {
        nextProgress = now + options.progressSeconds
        let line = runs.map { "\($0.target) \($0.inputs) (\($0.findings.values.reduce(0, +)) findings, corpus \($0.corpus.count))" }
        FileHandle.standardError.write("[\(Int(now - start)) s] \(line.joined(separator: "; "))\n".data(using: .utf8)!)
    }
}
let wall = seconds() - start
runner.removeTemporaryFile()

// MARK: - Summary

print("")
print("target         inputs   accepted  corrupt  unsupported  tooLarge  findings  slowest cpu ms (input)  mean us  corpus  outcomes")
for run in runs {
    let columns = [
        run.target.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0),
        String(run.inputs).leftPadded(8), String(run.accepted).leftPadded(9),
        String(run.rejected["corrupt", default: 0]).leftPadded(8), String(run.rejected["unsupported", default: 0]).leftPadded(12),
        String(run.rejected["tooLarge", default: 0]).leftPadded(9), String(run.findings.values.reduce(0, +)).leftPadded(9),
        (String(format: "%.2f", run.slowest * 1e3) + " (\(run.slowestIteration))").leftPadded(23),
        String(format: "%.0f", run.busySeconds / Double(max(1, run.inputs)) * 1e6).leftPadded(8),
        String(run.corpus.count).leftPadded(7), String(run.outcomes.count).leftPadded(9),
    ]
    print(columns.joined(separator: " "))
}
for run in runs {
    let used = run.mutations.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    print("\(run.target) mutations: \(used)")
    if !run.findings.isEmpty { print("\(run.target) findings: \(run.findings.sorted { $0.key < $1.key })") }
    if options.listOutcomes > 0 {
        print("\(run.target): the \(options.listOutcomes) most frequent of \(run.outcomes.count) outcomes")
        for (signature, count) in run.outcomes.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }).prefix(options.listOutcomes) {
            print("  \(String(count).leftPadded(8))  \(signature)")
        }
    }
}
print(totalFindings == 0 ? "findings: none" : "findings: \(totalFindings), inputs saved in \(options.saveDirectory)")

func jsonObject(_ pairs: [(String, String)]) -> String {
    "{" + pairs.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
}
let targetsJSON = runs.map { run -> (String, String) in
    let rejected = jsonObject(run.rejected.sorted { $0.key < $1.key }.map { ($0.key, String($0.value)) })
    let findings = jsonObject(run.findings.sorted { $0.key < $1.key }.map { ($0.key, String($0.value)) })
    return (run.target.rawValue, jsonObject([
        ("inputs", String(run.inputs)), ("seeds", String(run.seedCount)), ("accepted", String(run.accepted)),
        ("rejected", rejected), ("findings", findings),
        ("without_finding", String(run.inputs - run.findings.values.reduce(0, +))),
        ("slowest_cpu_ms", String(format: "%.3f", run.slowest * 1e3)), ("slowest_input", String(run.slowestIteration)),
        ("slowest_wall_ms", String(format: "%.3f", run.slowestWall * 1e3)),
        ("mean_us", String(format: "%.1f", run.busySeconds / Double(max(1, run.inputs)) * 1e6)),
        ("corpus", String(run.corpus.count)), ("outcomes", String(run.outcomes.count)),
    ]))
}
print(jsonObject([
    ("tool", "\"neurite-fuzz\""), ("seed", String(options.seed)), ("seconds", String(format: "%.1f", wall)),
    ("targets", jsonObject(targetsJSON)), ("findings", String(totalFindings)),
]))
exit(totalFindings == 0 ? 0 : 1)

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
