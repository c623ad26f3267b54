// swift-tools-version: 6.0
// Neurite: deep learning in Swift. One package, one library product per module.
// No unsafe compiler flags anywhere: users depend on our products by version, and SwiftPM
// refuses unsafe flags in dependencies. ISA-specific code lives in the CKernels C
// target, whose functions carry per-function `target` attributes and are chosen at run time.
import PackageDescription

let package = Package(
    name: "Neurite",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "Optimizers", targets: ["Optimizers"]),
        .library(name: "Layers", targets: ["Layers"]),
        .library(name: "Recurrent", targets: ["Recurrent"]),
        .library(name: "Unsupervised", targets: ["Unsupervised"]),
        // Data-parallel training over Open MPI: the only product that needs MPI.
        .library(name: "DistributedTraining", targets: ["DistributedTraining"]),
        // Keras 3 `.keras` archives and `model.to_json()` both ways: the only product that needs
        // libhdf5 and ZIPFoundation.
        .library(name: "KerasInterop", targets: ["KerasInterop"]),
        // Everything above in one import, as swift-numerics' `Numerics` does.
        .library(name: "Neurite", targets: ["Neurite"]),
    ],
    dependencies: [
        // Command-line parsing for the tools under Tools/ and the demos under Apps/ only; no library
        // product depends on it.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Zip archives (the `.keras` container), for KerasInterop only.
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        // Documentation only (`swift package generate-documentation`, see Tools/build-docs.sh); adds a
        // command plugin, and no library product depends on it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // ISA-specific micro-kernels (AVX-512, AVX2+FMA, portable), dispatched at run time.
        .target(
            name: "CKernels",
            path: "Packages/CKernels",
            linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]
        ),
        .target(
            name: "TensorCore",
            dependencies: ["CKernels"],
            path: "Packages/TensorCore"
        ),
        .target(
            name: "Optimizers",
            dependencies: ["TensorCore"],
            path: "Packages/Optimizers"
        ),
        .target(
            name: "Layers",
            dependencies: ["TensorCore", "Optimizers"],
            path: "Packages/Layers"
        ),
        // SimpleRNN, LSTM, GRU, Bidirectional, Embedding: sequences [B, T, F].
        .target(name: "Recurrent", dependencies: ["Layers", "Optimizers", "TensorCore"], path: "Packages/Recurrent"),
        // Autoencoders, PCA, restricted Boltzmann machines and minority-class oversampling.
        .target(name: "Unsupervised", dependencies: ["Layers", "Optimizers", "TensorCore"], path: "Packages/Unsupervised"),
        // zlib, for gzip-compressed IDX files. Not named CZlib: ZIPFoundation (KerasInterop) defines that module.
        .systemLibrary(
            name: "CNeuriteZlib",
            path: "Packages/CNeuriteZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
        ),
        // libpng and libjpeg(-turbo), reached only through the CImageCodecs shim.
        .systemLibrary(
            name: "CPNG",
            path: "Packages/CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]
        ),
        .systemLibrary(
            name: "CJPEG",
            path: "Packages/CJPEG",
            pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg-dev"]), .brew(["jpeg-turbo"])]
        ),
        // PNG/JPEG decode and PNG encode with the setjmp/longjmp error handling those libraries
        // need; Swift sees only status codes and messages.
        .target(
            name: "CImageCodecs",
            dependencies: ["CPNG", "CJPEG"],
            path: "Packages/CImageCodecs"
        ),
        .target(
            name: "Datasets",
            dependencies: ["TensorCore", "CNeuriteZlib", "CImageCodecs"],
            path: "Packages/Datasets"
        ),
        // Open MPI (pkg-config ompi-c), reached only by DistributedTraining, so users of the other
        // products never need it installed.
        .systemLibrary(
            name: "CMPI",
            path: "Packages/CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"]), .brew(["open-mpi"])]
        ),
        // Communicator over MPI and data-parallel training (DataParallel). Not named `Distributed`:
        // that is the Swift toolchain's module for distributed actors.
        .target(
            name: "DistributedTraining",
            dependencies: ["CMPI", "Layers", "Optimizers", "Datasets", "TensorCore"],
            path: "Packages/DistributedTraining"
        ),
        // libhdf5 (pkg-config hdf5), reached only through the CKerasHDF5 shim, for KerasInterop.
        .systemLibrary(
            name: "CHDF5",
            path: "Packages/CHDF5",
            pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"]), .brew(["hdf5"])]
        ),
        // Reads and writes the float32 datasets, groups and string attributes of a Keras weights
        // file; HDF5's type macros and error stack stay on the C side.
        .target(
            name: "CKerasHDF5",
            dependencies: ["CHDF5"],
            path: "Packages/CKerasHDF5"
        ),
        // Keras 3 model files (.keras: config.json, metadata.json, model.weights.h5) and
        // `model.to_json()` to and from `Sequential`. ZIPFoundation writes the archives; reading
        // them is our own strict reader over zlib (CNeuriteZlib), see ZipReader.swift for why.
        .target(
            name: "KerasInterop",
            dependencies: ["Layers", "Recurrent", "Optimizers", "TensorCore", "CKerasHDF5", "CNeuriteZlib",
                           .product(name: "ZIPFoundation", package: "ZIPFoundation")],
            path: "Packages/KerasInterop"
        ),
        // Re-exports TensorCore, Optimizers, Layers, Recurrent, Datasets and Unsupervised; holds no code of its own.
        .target(
            name: "Neurite",
            dependencies: ["TensorCore", "Optimizers", "Layers", "Recurrent", "Datasets", "Unsupervised"],
            path: "Packages/Neurite"
        ),
        // Demo: a shallow network written directly on TensorCore's kernels.
        .executableTarget(
            name: "mlp-from-scratch",
            dependencies: ["TensorCore", "Datasets"],
            path: "Apps/mlp-from-scratch"
        ),
        // What the Layers demos share: their command-line options, data loading, timed training
        // and reports. Implementation-only, not a product.
        .target(
            name: "_AppSupport",
            dependencies: ["Layers", "Optimizers", "Datasets", "TensorCore",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Apps/_AppSupport"
        ),
        // Demo: a shallow and a deep multilayer perceptron side by side (Layers, fit, evaluate).
        .executableTarget(
            name: "shallow-vs-deep",
            dependencies: ["Layers", "Optimizers", "Datasets", "TensorCore", "_AppSupport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Apps/shallow-vs-deep"
        ),
        // Demo: the course CNN and one with batch normalisation; confusion matrix, misclassified images.
        .executableTarget(
            name: "cnn",
            dependencies: ["Layers", "Optimizers", "Datasets", "TensorCore", "_AppSupport", "KerasInterop",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Apps/cnn"
        ),
        // Demos: images read row by row by an LSTM/GRU/SimpleRNN; a character-level text generator.
        .executableTarget(
            name: "sequence-classifier",
            dependencies: ["Recurrent", "Layers", "Optimizers", "Datasets", "TensorCore", "_AppSupport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Apps/sequence-classifier"
        ),
        .executableTarget(
            name: "text-generator",
            dependencies: ["Recurrent", "Layers", "Optimizers", "Datasets", "TensorCore", "_AppSupport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Apps/text-generator"
        ),
        // Demos of sequences: forecasting stock prices and weather, learning a genome.
        .executableTarget(name: "forecast", dependencies: ["Recurrent", "Layers", "Optimizers", "Datasets", "TensorCore", "_AppSupport",
                                                           .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Apps/forecast"),
        .executableTarget(name: "genome", dependencies: ["Recurrent", "Layers", "Optimizers", "Datasets", "TensorCore", "_AppSupport",
                                                         .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Apps/genome"),
        // Demos of the Unsupervised module: autoencoders vs PCA, an RBM on MNIST, oversampling.
        .executableTarget(name: "autoencoder", dependencies: ["Unsupervised", "Layers", "Optimizers", "Datasets", "TensorCore", "_AppSupport",
                                                              .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Apps/autoencoder"),
        .executableTarget(name: "rbm", dependencies: ["Unsupervised", "Layers", "Optimizers", "Datasets", "TensorCore", "_AppSupport",
                                                      .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Apps/rbm"),
        .executableTarget(name: "rebalance", dependencies: ["Unsupervised", "Layers", "Optimizers", "Datasets", "TensorCore", "_AppSupport",
                                                            .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Apps/rebalance"),
        // Demo: a demo model trained data-parallel on the ranks of an MPI job; the only demo that needs MPI.
        .executableTarget(name: "distributed-train", dependencies: ["DistributedTraining", "Recurrent", "Layers", "Optimizers", "Datasets", "TensorCore", "_AppSupport",
                                                                    .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Apps/distributed-train"),
        // The FMA-peak probe of `neurite-bench peak` (and the training suite's arithmetic floor): C for
        // per-function ISA targets, as CKernels; implementation-only, not a product.
        .target(name: "CFMAPeak", dependencies: ["CKernels"], path: "Tools/FMAPeak"),
        .executableTarget(
            name: "neurite-bench",
            dependencies: ["CKernels", "CFMAPeak", "TensorCore", "Datasets", "Optimizers", "Layers", "Recurrent", "Unsupervised", "_AppSupport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/Benchmarks"
        ),
        // neurite-data: inspect IDX/PNG/JPEG files, turn IDX data sets into image folders and back, run a
        // saved model on raw float32 samples (the PyTorch recipe checks against it).
        .executableTarget(
            name: "neurite-data",
            dependencies: ["Datasets", "Layers", "Recurrent", "KerasInterop", "TensorCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/neurite-data"
        ),
        // neurite-mpi-check: the small data-parallel runs DistributedTrainingTests start under mpirun.
        .executableTarget(
            name: "neurite-mpi-check",
            dependencies: ["DistributedTraining", "Layers", "Optimizers", "TensorCore"],
            path: "Tools/neurite-mpi-check"
        ),
        // neurite-fuzz: seeded mutation fuzzer for the IDX, PNG and JPEG readers and the .keras
        // readers (zip container, HDF5 weights).
        .executableTarget(
            name: "neurite-fuzz",
            dependencies: ["Datasets", "TensorCore", "KerasInterop"],
            path: "Tools/neurite-fuzz"
        ),
        // Shared test checkers (assertClose, checkGradient, ...) used by every module's tests.
        .target(
            name: "_NeuriteTestSupport",
            dependencies: ["TensorCore"],
            path: "Tests/_NeuriteTestSupport"
        ),
        // The Keras-style layer test harness (`layerTest`) every layer's tests go through.
        .target(
            name: "_LayerTestSupport",
            dependencies: ["Layers", "Optimizers", "TensorCore", "_NeuriteTestSupport"],
            path: "Tests/_LayerTestSupport"
        ),
        .testTarget(
            name: "TensorCoreTests",
            dependencies: ["TensorCore", "_NeuriteTestSupport"],
            path: "Tests/TensorCoreTests"
        ),
        .testTarget(
            name: "OptimizersTests",
            dependencies: ["Optimizers", "_NeuriteTestSupport"],
            path: "Tests/OptimizersTests"
        ),
        .testTarget(
            name: "LayersTests",
            // Datasets only for the end-to-end training test on MNIST (CNNTrainingTests).
            dependencies: ["Layers", "Optimizers", "Datasets", "_NeuriteTestSupport", "_LayerTestSupport"],
            path: "Tests/LayersTests"
        ),
        .testTarget(name: "UnsupervisedTests", dependencies: ["Unsupervised", "Layers", "Optimizers", "_NeuriteTestSupport"],
                    path: "Tests/UnsupervisedTests"),
        .testTarget(
            name: "RecurrentTests",
            dependencies: ["Recurrent", "Layers", "Optimizers", "_NeuriteTestSupport", "_LayerTestSupport"],
            path: "Tests/RecurrentTests"
        ),
        .testTarget(
            name: "NeuriteTests",
            // _NeuriteTestSupport to run neurite-data (built beside the bundle) in NeuriteDataPredictTests.
            dependencies: ["Neurite", "_NeuriteTestSupport"],
            path: "Tests/NeuriteTests"
        ),
        // Runs neurite-mpi-check under mpirun (so Open MPI must be installed, as CI does).
        .testTarget(
            name: "DistributedTrainingTests",
            dependencies: ["DistributedTraining", "Layers", "TensorCore"],
            path: "Tests/DistributedTrainingTests"
        ),
        // Loads models trained by a real Keras (the virtual environment Tools/reference/setup_venvs.sh
        // makes, which .ci/run prepares) and has Keras load ours.
        .testTarget(
            name: "KerasInteropTests",
            dependencies: ["KerasInterop", "Layers", "Recurrent", "Optimizers", "TensorCore", "_NeuriteTestSupport"],
            path: "Tests/KerasInteropTests",
            // Files neurite-fuzz found, read by path from the source tree (HDF5FuzzFindingsTests).
            exclude: ["FuzzFindings"]
        ),
        // Runs every app under Apps/ (built beside the test bundle, as `swift test` builds every
        // product) to check the options each accepts and rejects, no training; and checks the apps'
        // pictures (_AppSupport: the bitmap font, titles, plots) in process.
        .testTarget(
            name: "AppsTests",
            dependencies: ["_NeuriteTestSupport", "_AppSupport", "TensorCore", "Layers"],
            path: "Tests/AppsTests"
        ),
        .testTarget(
            name: "DatasetsTests",
            dependencies: ["Datasets", "_NeuriteTestSupport"],
            path: "Tests/DatasetsTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
