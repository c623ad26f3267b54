import Optimizers
import TensorCore

/// The `optimizers` suite: one `step` of each update rule, on one 4Mi-element parameter (past the
/// caches: measures memory bandwidth) and on the parameters of a 784-128-10 MLP (101,770
/// elements, which stay in the L2/L3 caches during training).
///
/// Bytes count the arrays the rule must read and write per element: SGD with momentum reads
/// w, g, b and writes w, b (20 bytes); Adam and AdamW read w, g, m, v and write w, m, v (28);
/// RMSprop without momentum and Adagrad read w, g and one slot and write w and the slot (20).
/// The reference is a plain copy moving the same number of bytes (half read, half written)
/// through a buffer of the same total size, on the same threads.
enum OptimizerBench {
    /// One rule: its name, a fresh optimizer, and the bytes it moves per element.
    private static var rules: [(name: String, make: () -> any Optimizer, bytesPerElement: Int)] { [
        ("sgd_momentum", { SGD(learningRate: 0.01, momentum: 0.9) }, 20),
        ("adam", { Adam() }, 28),
        ("adamw", { AdamW() }, 28),
        ("rmsprop", { RMSprop() }, 20),
        ("adagrad", { Adagrad() }, 20),
    ] }

    /// The parameter sets measured: (label, shapes).
    private static let parameterSets: [(label: String, shapes: [[Int]])] = [
        ("4M", [[2048, 2048]]),
        ("mlp_784_128_10", [[784, 128], [128], [128, 10], [10]]),
    ]

    /// Measures every rule on every parameter set with each thread count, printing one JSON line per case.
    static func run(minSeconds: Double, threadCounts: [Int], isa: String) {
        for set in parameterSets {
            let elements = set.shapes.reduce(0) { $0 + $1.reduce(1, *) }
            for threads in threadCounts {
                ThreadPool.withWidthLimit(threads) {
                    var copyRates: [Int: Double] = [:]
                    for rule in rules {
                        let bytes = rule.bytesPerElement * elements
                        if copyRates[bytes] == nil { copyRates[bytes] = copyRate(bytes: bytes, minSeconds: minSeconds) }
                        let parameters = makeParameters(set.shapes)
                        let optimizer = rule.make()
                        let seconds = measure(minSeconds: minSeconds) { optimizer.step(parameters) }
                        let rate = Double(bytes) / seconds
                        emit([("bench", "optimizers"), ("impl", "neurite"), ("isa", isa), ("op", rule.name),
                              ("params", set.label), ("elements", elements), ("threads", threads),
                              ("us", seconds * 1e6), ("ns_per_element", seconds * 1e9 / Double(elements)),
                              ("gbps", rate / 1e9), ("copy_gbps", copyRates[bytes]! / 1e9),
                              ("vs_copy", rate / copyRates[bytes]!)])
                    }
                }
            }
        }
    }

    /// Parameters of the given shapes with random values and a random gradient (seeded).
    private static func makeParameters(_ shapes: [[Int]]) -> [Parameter] {
        shapes.enumerated().map { k, shape in
            let p = Parameter(name: "p\(k)", value: Tensor.randomUniform(shape, in: -1...1, using: &SeededGeneratorBox.shared))
            p.accumulateGradient(Tensor.randomUniform(shape, in: -1...1, using: &SeededGeneratorBox.shared))
            return p
        }
    }

    /// Bytes per second of a plain copy that reads `bytes / 2` and writes `bytes / 2`, split over
    /// the pool as the rules are.
    private static func copyRate(bytes: Int, minSeconds: Double) -> Double {
        let n = bytes / 8
        let source = Tensor.randomUniform([n], in: -1...1, using: &SeededGeneratorBox.shared)
        var destination = Tensor.zeros([n])
        let seconds = measure(minSeconds: minSeconds) {
            destination.withUnsafeMutableBufferPointer { d in
                source.withUnsafeBufferPointer { s in
                    ThreadPool.shared.parallelChunks(n, grain: 1 << 16) { r in
                        (d.baseAddress! + r.lowerBound).update(from: s.baseAddress! + r.lowerBound, count: r.count)
                    }
                }
            }
        }
        return Double(8 * n) / seconds
    }
}
