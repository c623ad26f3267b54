import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// The update rules run as vectorised kernels, 16 lanes at a time, with the remainder of a
/// parameter through the same code on padded copies. Lengths around the vector width must match
/// the Float64 references, every kernel path must give the same bits (no path fuses a
/// multiply-add), and so must every split of a parameter into pieces.
final class UpdateKernelTests: XCTestCase {
    /// Each configuration: a name, a fresh optimizer, and a fresh Float64 reference of its rule.
    private let configurations: [(name: String, optimizer: () -> any Optimizer, reference: () -> any ReferenceRule)] = [
        ("SGD", { SGD(learningRate: 0.1) }, { ReferenceSGD() }),
        ("SGD momentum", { SGD(learningRate: 0.1, momentum: 0.9) }, { ReferenceSGD(momentum: 0.9) }),
        ("SGD Nesterov, weight decay", { SGD(learningRate: 0.1, momentum: 0.8, nesterov: true, weightDecay: 0.01) },
         { ReferenceSGD(momentum: 0.8, nesterov: true, weightDecay: 0.01) }),
        ("Adam", { Adam(learningRate: 0.01) }, { ReferenceAdam() }),
        ("Adam AMSGrad", { Adam(learningRate: 0.01, beta2: 0.9, amsgrad: true) }, { ReferenceAdam(beta2: 0.9, amsgrad: true) }),
        ("AdamW", { AdamW(learningRate: 0.01, weightDecay: 0.1) }, { ReferenceAdam(weightDecay: 0.1) }),
        ("RMSprop", { RMSprop(learningRate: 0.01) }, { ReferenceRMSprop() }),
        ("RMSprop momentum, centred", { RMSprop(learningRate: 0.01, rho: 0.8, momentum: 0.5, centered: true) },
         { ReferenceRMSprop(rho: 0.8, momentum: 0.5, centered: true) }),
        ("Adagrad", { Adagrad(learningRate: 0.1) }, { ReferenceAdagrad() }),
    ]

    func testLengthsAroundTheVectorWidthMatchTheFloat64ReferenceOnEveryPath() {
        let lengths = [1, 7, 8, 9, 15, 16, 17, 31, 33, 1000]
        for configuration in configurations {
            var firstPath: [Int: (KernelISA, [Float])] = [:]
            forEachISA { isa in
                for n in lengths {
                    let values = randomScalars(n, seed: UInt64(n))
                    let p = Parameter(name: "w", value: Tensor(values))
                    let optimizer = configuration.optimizer()
                    var reference = configuration.reference()
                    var expected = values.map(Double.init)
                    for step in 0..<5 {
                        let g = fixtureGradient(step: step, parameter: 0, count: n)
                        p.zeroGradient()
                        p.accumulateGradient(Tensor(g))
                        let lr = Double(optimizer.learningRate)
                        optimizer.step([p])
                        reference.update(&expected, gradient: g.map(Double.init), parameter: 0, t: step + 1, lr: lr)
                        assertClose(p.value.scalars, expected, rtol: 1e-5, atol: 1e-6,
                                    "\(configuration.name), \(n) elements, step \(step + 1), \(isa) path")
                    }
                    XCTAssertNotEqual(p.value.scalars, values, "\(configuration.name) did not move the weights")
                    if let (firstISA, first) = firstPath[n] {
                        XCTAssertEqual(p.value.scalars, first,
                                       "\(configuration.name), \(n) elements: the \(isa) and \(firstISA) paths differ")
                    } else {
                        firstPath[n] = (isa, p.value.scalars)
                    }
                }
            }
        }
    }

    func testEverySplitOfAParameterGivesTheSameBits() {
        // Pieces of every length around the vector width go through the remainder code; the
        // whole parameter goes through the vector body. Both must give the same bits.
        let pieceLengths = [1, 7, 8, 9, 15, 16, 17, 31, 33, 863]
        let n = pieceLengths.reduce(0, +)
        let values = randomScalars(n, seed: 21), gradient = randomScalars(n, seed: 22)
        for configuration in configurations {
            forEachISA { isa in
                let whole = Parameter(name: "whole", value: Tensor(values))
                whole.accumulateGradient(Tensor(gradient))
                var pieces: [Parameter] = []
                var start = 0
                for length in pieceLengths {
                    let piece = Parameter(name: "piece\(pieces.count)", value: Tensor(Array(values[start..<start + length])))
                    piece.accumulateGradient(Tensor(Array(gradient[start..<start + length])))
                    pieces.append(piece)
                    start += length
                }
                let wholeOptimizer = configuration.optimizer(), piecesOptimizer = configuration.optimizer()
                for _ in 0..<3 {
                    wholeOptimizer.step([whole])
                    piecesOptimizer.step(pieces)
                }
                XCTAssertEqual(whole.value.scalars, pieces.flatMap(\.value.scalars), "\(configuration.name), \(isa) path")
            }
        }
    }
}
