import Foundation
import Layers
import TensorCore
import Unsupervised
import _AppSupport

/// An RBM oversampler named on the command line: `rbm` (the recommended variant), `rbm-original`
/// (the first recipe) or `rbm/key=value/...`, the keys changing the recommended variant one at a
/// time (see ``keysHelp``). Besides ``RBMOverSampler``'s own settings it can filter candidates by
/// the confidence of a classifier trained on the data as it is (`confidence=K`).
struct RBMVariant {
    /// The sampler; its strategy is balance-all and its seed is set at use.
    var sampler: RBMOverSampler
    /// Candidates drawn per generated sample kept by the classifier's confidence (1: no filter).
    var confidenceFactor = 1
    /// Whether the confidence filter keeps the least confident candidates (the hardest) instead.
    var keepHardest = false

    /// The first recipe: 100 hidden units, PCD-1, one Gibbs step from real samples, mean field.
    static let originalSpec = "rbm/hidden=100/train=pcd1/steps=1/units=bernoulli/chains=0/energy=1/real=0/mean=1"
    /// The recommended variant (`RBMOverSampler.recommended`), chosen on the validation split (see
    /// README, "Unsupervised"): the original with drawn samples, half of the new samples real copies.
    static let recommendedSpec = "rbm/hidden=100/train=pcd1/steps=1/units=bernoulli/chains=0/energy=1/real=0.5/mean=0"
    /// What `rbm/...` accepts.
    static let keysHelp = "hidden (units), lr, updates (at least), batch, train (pcdK or cdK), steps (Gibbs steps per sample), "
        + "units (bernoulli or gaussian), chains (persistent chains; 0 starts every sample at a real one), energy (K: keep the "
        + "lowest free energy of K candidates per sample), confidence (K: keep the K candidates' most confident by a "
        + "classifier trained without resampling), hard (K: keep the least confident of K), real (fraction of real copies), mean (1: visible means, 0: drawn values)"

    /// Parses `rbm`, `rbm-original` or `rbm/key=value/...` (on top of the recommended variant).
    static func parse(_ name: String) throws -> RBMVariant {
        let spec: String
        switch name {
        case "rbm": spec = recommendedSpec
        case "rbm-original": spec = originalSpec
        default:
            guard name.hasPrefix("rbm/") else { throw DemoFailure("--samplers: unknown RBM variant \"\(name)\"") }
            spec = recommendedSpec + name.dropFirst(3)
        }
        var variant = RBMVariant(sampler: RBMOverSampler())
        for pair in spec.split(separator: "/").dropFirst() {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw DemoFailure("--samplers: \"\(pair)\" in \"\(name)\" is not key=value") }
            let (key, value) = (parts[0], parts[1])
            func integer(_ range: ClosedRange<Int>) throws -> Int {
                guard let v = Int(value), range.contains(v) else {
                    throw DemoFailure("--samplers: \(key)=\(value) in \"\(name)\" must be an integer in \(range)")
                }
                return v
            }
            func real(_ range: ClosedRange<Double>) throws -> Double {
                guard let v = Double(value), range.contains(v) else {
                    throw DemoFailure("--samplers: \(key)=\(value) in \"\(name)\" must be a number in \(range)")
                }
                return v
            }
            switch key {
            case "hidden": variant.sampler.hiddenUnits = try integer(1...10_000)
            case "lr": variant.sampler.learningRate = Float(try real(1e-6...10))
            case "updates": variant.sampler.minimumUpdates = try integer(1...1_000_000)
            case "batch": variant.sampler.batchSize = try integer(1...10_000)
            case "steps": variant.sampler.gibbsSteps = try integer(1...100_000)
            case "energy": variant.sampler.candidateFactor = try integer(1...100)
            case "confidence": variant.confidenceFactor = try integer(1...100); variant.keepHardest = false
            case "hard": variant.confidenceFactor = try integer(1...100); variant.keepHardest = true
            case "recon": if try integer(0...1) == 1 { variant.sampler.sampling = .reconstruction }
            case "real": variant.sampler.realFraction = try real(0...1)
            case "mean": variant.sampler.meanField = try integer(0...1) == 1
            case "chains":
                let chains = try integer(0...100_000)
                variant.sampler.sampling = chains == 0 ? .fromData : .persistentChains(chains: chains)
            case "units":
                guard let units = RBM.VisibleUnits(rawValue: value) else {
                    throw DemoFailure("--samplers: units=\(value) in \"\(name)\" must be bernoulli or gaussian")
                }
                variant.sampler.visibleUnits = units
            case "train":
                let kind = value.prefix { $0.isLetter }
                guard let k = Int(value.dropFirst(kind.count)), k >= 1, kind == "pcd" || kind == "cd" else {
                    throw DemoFailure("--samplers: train=\(value) in \"\(name)\" must be pcdK or cdK (K >= 1)")
                }
                variant.sampler.trainingMethod = kind == "pcd" ? .persistent(steps: k) : .contrastiveDivergence(steps: k)
            default:
                throw DemoFailure("--samplers: unknown key \"\(key)\" in \"\(name)\"; keys: \(keysHelp)")
            }
        }
        return variant
    }

    /// Brings every class up to the largest, as ``RBMOverSampler/fitResample(_:_:)``, filtering
    /// generated candidates by `judge`'s softmax probability of their class when
    /// ``confidenceFactor`` is above 1.
    func fitResample(_ x: Tensor, _ y: [Int], seed: UInt64, judge: Sequential?) throws -> (x: Tensor, y: [Int]) {
        var sampler = self.sampler
        sampler.seed = seed
        guard confidenceFactor > 1, let judge else { return try sampler.fitResample(x, y) }
        var members: [Int: [Int]] = [:]
        for (i, label) in y.enumerated() { members[label, default: []].append(i) }
        let add = try SamplingStrategy.balanceAll.samplesToAdd(counts: members.mapValues(\.count))
        var parts = [x], labels = y
        var generator = SeededGenerator(seed: seed, stream: 77)
        let realFraction = sampler.realFraction
        sampler.realFraction = 0
        for label in add.keys.sorted() {
            let count = add[label]!, rows = x.gather(members[label]!)
            let realCount = Swift.min(count, Int((Double(count) * realFraction).rounded()))
            let generatedCount = count - realCount
            if generatedCount > 0 {
                let candidates = try sampler.generate(from: rows, count: generatedCount * confidenceFactor, label: label)
                let logits = try judge.predict(candidates, batchSize: 1000)
                let classes = logits.shape[1]
                let confidence: [Float] = logits.withUnsafeBufferPointer { z in
                    (0..<candidates.shape[0]).map { r in
                        let row = z.baseAddress! + r * classes
                        var top = row[0]
                        for j in 1..<classes { top = Swift.max(top, row[j]) }
                        var total: Float = 0
                        for j in 0..<classes { total += Foundation.exp(row[j] - top) }
                        return row[label] - top - Foundation.log(total)      // log P(label | candidate)
                    }
                }
                let sign: Float = keepHardest ? -1 : 1
                let kept = confidence.indices.sorted { (sign * confidence[$0], $1) > (sign * confidence[$1], $0) }.prefix(generatedCount)
                parts.append(candidates.gather(Array(kept)))
            }
            if realCount > 0 { parts.append(rows.gather((0..<realCount).map { _ in generator.nextIndex(below: rows.shape[0]) })) }
            labels += Array(repeating: label, count: count)
        }
        return (Tensor.concatenate(parts, axis: 0), labels)
    }
}
