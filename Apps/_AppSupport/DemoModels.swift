import Layers

/// The networks of the course's demos, in one place, so that `shallow-vs-deep`, `cnn` and the
/// `neurite-bench` layers and training suites build exactly the same models. Each takes 28x28x1
/// images and gives 10 logits.
public enum DemoModels {
    /// Flatten, Dense 128 relu, Dense 10: the course's shallow network.
    public static func shallowMLP() -> Sequential {
        Sequential(inputShape: [28, 28, 1]) {
            Flatten()
            Dense(128, activation: .relu)
            Dense(10)
        }
    }

    /// Flatten, Dense 512, 256 and 128 relu, Dense 10: the deep network.
    public static func deepMLP() -> Sequential {
        Sequential(inputShape: [28, 28, 1]) {
            Flatten()
            Dense(512, activation: .relu)
            Dense(256, activation: .relu)
            Dense(128, activation: .relu)
            Dense(10)
        }
    }

    /// Conv2D 16 5x5 relu, MaxPool 2, Conv2D 8 2x2 relu, MaxPool 2, Flatten, Dense 100 relu,
    /// Dense 10: the course's CNN.
    public static func courseCNN() -> Sequential {
        Sequential(inputShape: [28, 28, 1]) {
            Conv2D(filters: 16, kernelSize: (5, 5), activation: .relu)
            MaxPool2D(poolSize: (2, 2))
            Conv2D(filters: 8, kernelSize: (2, 2), activation: .relu)
            MaxPool2D(poolSize: (2, 2))
            Flatten()
            Dense(100, activation: .relu)
            Dense(10)
        }
    }

    /// Conv2D 32 3x3, BatchNormalization, relu, MaxPool 2, Conv2D 64 3x3, BatchNormalization,
    /// relu, MaxPool 2, Flatten, Dense 128 relu, Dropout 0.3, Dense 10. The convolutions have no
    /// bias: the batch normalisation after each subtracts the mean of every channel, which would
    /// cancel it, and adds its own offset (beta).
    public static func batchNormCNN() -> Sequential {
        Sequential(inputShape: [28, 28, 1]) {
            Conv2D(filters: 32, kernelSize: (3, 3), useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Conv2D(filters: 64, kernelSize: (3, 3), useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Flatten()
            Dense(128, activation: .relu)
            Dropout(0.3)
            Dense(10)
        }
    }

    /// The `cnn --recipe best` network, a wider batch-normalised CNN of 3x3 convolutions:
    /// Conv2D 32 3x3, BatchNormalization, relu, MaxPool 2, Conv2D 64 3x3, BatchNormalization,
    /// relu, Conv2D 64 3x3, BatchNormalization, relu, MaxPool 2, Flatten, Dense 256 relu,
    /// Dropout 0.3, Dense 10 (28 -> 26 -> 13 -> 11 -> 9 -> 4 pixels across). About twice the
    /// multiply-adds of ``batchNormCNN()`` per image: the third convolution, at 11x11 and 9x9,
    /// costs less than widening the first two would.
    public static func wideCNN() -> Sequential {
        Sequential(inputShape: [28, 28, 1]) {
            Conv2D(filters: 32, kernelSize: (3, 3), useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Conv2D(filters: 64, kernelSize: (3, 3), useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            Conv2D(filters: 64, kernelSize: (3, 3), useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Flatten()
            Dense(256, activation: .relu)
            Dropout(0.3)
            Dense(10)
        }
    }

    /// A larger batch-normalised CNN with "same" padding, which keeps the border pixels (Fashion
    /// images have ink there): Conv2D 32 3x3, BN, relu, MaxPool 2, Conv2D 64 3x3, BN, relu,
    /// MaxPool 2, Conv2D 128 3x3, BN, relu, MaxPool 2, Flatten, Dense 256 relu, Dropout 0.3,
    /// Dense 10 (28 -> 14 -> 7 -> 3 pixels across). About 1.4 times the multiply-adds of
    /// ``wideCNN()`` per image.
    public static func largeCNN() -> Sequential {
        Sequential(inputShape: [28, 28, 1]) {
            Conv2D(filters: 32, kernelSize: (3, 3), padding: .same, useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Conv2D(filters: 64, kernelSize: (3, 3), padding: .same, useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Conv2D(filters: 128, kernelSize: (3, 3), padding: .same, useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Flatten()
            Dense(256, activation: .relu)
            Dropout(0.3)
            Dense(10)
        }
    }
}

