// Neurite in one import: `import Neurite` brings tensors and kernels (TensorCore), optimizers
// (Optimizers), layers, models and training (Layers), recurrent layers (Recurrent), data loading (Datasets)
// and autoencoders, PCA, RBMs and oversampling (Unsupervised). Depend on the
// single modules instead to keep a build small (a tool that only reads IDX files needs Datasets).
@_exported import Datasets
@_exported import Layers
@_exported import Recurrent
@_exported import Optimizers
@_exported import TensorCore
@_exported import Unsupervised
