import TensorCore

/// The keys of the scalars in an optimizer's exported state.
enum StateKey {
    /// The step count, as a one-element tensor.
    static let iterations = "iterations"
    /// The learning rate the next step would use, as a one-element tensor.
    static let learningRate = "learning_rate"
}

extension OptimizerBase {
    /// Everything needed to resume training exactly where it stopped.
    ///
    /// - `"<parameter name>.<slot>"` for every parameter that has state (each optimizer's
    ///   documentation lists its slots, e.g. `"dense_1.kernel.m"` and `"dense_1.kernel.v"` for
    ///   `Adam`), shaped like the parameter;
    /// - `"iterations"`: the step count as a one-element tensor (exact up to 2²⁴ steps, the
    ///   largest integer a `Float` holds exactly);
    /// - `"learning_rate"`: the rate the next step would use, as a one-element tensor.
    ///
    /// A parameter gets state at its first step, so before any step only the scalars are
    /// exported. The tensors share storage with the optimizer (nothing is copied unless the
    /// optimizer writes to them while they are still held).
    /// - Precondition: the parameters with state have distinct names.
    public func stateTensors() -> [String: Tensor] {
        var state: [String: Tensor] = [
            StateKey.iterations: Tensor(scalar: Float(iterations)),
            StateKey.learningRate: Tensor(scalar: learningRate),
        ]
        let keys = slotKeys
        for entry in entries.values {
            for (suffix, path) in keys {
                let key = "\(entry.parameter.name).\(suffix)"
                neuritePrecondition(state[key] == nil,
                                    "two parameters with optimizer state are named \(entry.parameter.name); names must be unique")
                state[key] = entry.slots[keyPath: path]
            }
        }
        return state
    }

    /// Restores state exported by `stateTensors()` for `parameters` (matched by name), so
    /// that further steps give bit-identical results to a run that never stopped.
    ///
    /// Every key must be expected and well shaped, or nothing changes and `OptimizerError` is
    /// thrown naming every missing, unexpected and mis-shaped key:
    /// - `"iterations"` and `"learning_rate"` must be present, with one element each (the
    ///   count a non-negative integer);
    /// - each trainable parameter needs all its slots, each shaped like the parameter, unless
    ///   the saved `iterations` is 0 (then no slot is needed yet);
    /// - a non-trainable parameter may have all its slots (it was trained before it was frozen)
    ///   or none;
    /// - any other key is unexpected.
    ///
    /// The saved learning rate becomes the constant rate when this optimizer has no schedule;
    /// with a schedule, the restored `iterations` alone sets the rate. State of parameters not
    /// in `parameters` is dropped. The optimizer's configuration (its hyperparameters, clipping
    /// options and schedule) is not part of the state: make the new optimizer like the old one.
    public func loadStateTensors(_ state: [String: Tensor], for parameters: [Parameter]) throws {
        var problems: [String] = []
        var expected: Set<String> = [StateKey.iterations, StateKey.learningRate]

        var savedIterations = 0
        if let t = scalarState(state, StateKey.iterations, &problems) {
            if t.isFinite && t >= 0 && t == t.rounded() && t <= 1e15 {
                savedIterations = Int(t)
            } else {
                problems.append("key '\(StateKey.iterations)' holds \(t), not a step count")
            }
        }
        var savedRate = constantRate
        if let r = scalarState(state, StateKey.learningRate, &problems) {
            if r.isFinite && r >= 0 {
                savedRate = r
            } else {
                problems.append("key '\(StateKey.learningRate)' holds \(r), not a learning rate")
            }
        }

        var names = Set<String>()
        for p in parameters where !names.insert(p.name).inserted {
            throw OptimizerError("cannot load optimizer state: two parameters are named '\(p.name)'")
        }

        let keys = slotKeys
        var restored: [(Parameter, [(WritableKeyPath<Slots, Tensor>, Tensor)])] = []
        for p in parameters {
            let slotNames = keys.map { "\(p.name).\($0.name)" }
            expected.formUnion(slotNames)
            let present = slotNames.filter { state[$0] != nil }
            if present.isEmpty && (!p.isTrainable || savedIterations == 0) { continue }
            var tensors: [(WritableKeyPath<Slots, Tensor>, Tensor)] = []
            for (key, slot) in zip(slotNames, keys) {
                guard let t = state[key] else {
                    problems.append("missing key '\(key)'")
                    continue
                }
                if t.shape != p.value.shape {
                    problems.append("key '\(key)' has shape \(t.shape), parameter '\(p.name)' has shape \(p.value.shape)")
                }
                tensors.append((slot.path, t))
            }
            if !keys.isEmpty { restored.append((p, tensors)) }
        }
        for key in state.keys.sorted() where !expected.contains(key) {
            problems.append("unexpected key '\(key)'")
        }
        guard problems.isEmpty else {
            throw OptimizerError("optimizer state does not fit the parameters: " + problems.joined(separator: "; "))
        }

        entries = [:]
        for (p, tensors) in restored {
            var slots = makeSlots(for: p.value)
            for (path, t) in tensors { slots[keyPath: path] = t }
            entries[ObjectIdentifier(p)] = SlotEntry(parameter: p, shape: p.value.shape, slots: slots)
        }
        iterations = savedIterations
        if schedule == nil { constantRate = savedRate }
    }

    /// The single element of `state[key]`, or `nil` after noting why there is none.
    private func scalarState(_ state: [String: Tensor], _ key: String, _ problems: inout [String]) -> Float? {
        guard let t = state[key] else {
            problems.append("missing key '\(key)'")
            return nil
        }
        guard t.count == 1 else {
            problems.append("key '\(key)' has shape \(t.shape), expected one element")
            return nil
        }
        return t.scalar
    }
}
