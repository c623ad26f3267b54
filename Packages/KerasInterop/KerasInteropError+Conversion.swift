// The messages of the conversion cases of `KerasInteropError` (those after its
// "Conversion errors" marker): each names the layer (or model) and what could not be converted.
extension KerasInteropError {
    /// The message of a conversion case, or nil for a file case.
    var conversionDescription: String? {
        switch self {
        case .invalidModelConfig(let path, let reason):
            return "Keras model config\(path.isEmpty ? "" : " at \(path)"): \(reason)"
        case .unsupportedModel(let className, let reason):
            return "Keras model (\(className)): \(reason)"
        case .unsupportedLayer(let layer, let className, let reason):
            return "Keras layer '\(layer)' (\(className)) cannot be converted: \(reason)"
        case .unsupportedLayerConfig(let layer, let className, let reason):
            return "Keras layer '\(layer)' (\(className)) has a configuration Neurite cannot represent: \(reason)"
        case .missingWeight(let layer, let variable, let path):
            return "Keras weights: layer '\(layer)' needs its \(variable) at \(path), which the weights file does not have"
        case .weightShapeMismatch(let layer, let variable, let path, let expected, let found):
            return "Keras weights: layer '\(layer)' needs its \(variable) (\(path)) with shape \(expected), the file has \(found)"
        case .unexpectedWeights(let paths):
            let shown = paths.prefix(10).joined(separator: ", ") + (paths.count > 10 ? ", ... (\(paths.count) in all)" : "")
            return "Keras weights: the file holds variables no layer of the model takes: \(shown)"
        case .tooManyParameters(let count, let limit):
            let what = count == Int.max ? "more parameters than an Int counts" : "\(count) parameters"
            return "Keras model: \(what), above the limit of \(limit) (KerasFileLimits)"
        default:
            return nil
        }
    }
}
