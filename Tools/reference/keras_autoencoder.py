#!/usr/bin/env python3
"""Keras reference for Apps/autoencoder's dense network: 784-128-32-128-784 (relu, linear code,
sigmoid output), Adam 1e-3, binary cross-entropy, batch 256, on Fashion-MNIST (or MNIST) in 0...1.
Prints one JSON line: seconds of each epoch (training steps only) and the test reconstruction MSE,
the figures `swift run -c release autoencoder --models dense --code-sizes 32 --epochs 3
--batch-size 256 --noise none` prints.

Usage: python Tools/reference/keras_autoencoder.py [DATA_DIR] [--epochs 3]
(pip install tensorflow-cpu keras numpy; DATA_DIR defaults to /usr/share/datasets/fashion-mnist)
"""
import gzip
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import keras


def load(directory, prefix):
    path = os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz")
    with (gzip.open(path, "rb") if os.path.exists(path) else open(path[:-3], "rb")) as f:
        data = f.read()
    return np.frombuffer(data[16:], dtype=np.uint8).reshape(-1, 784).astype(np.float32) / 255


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    epochs = int(sys.argv[sys.argv.index("--epochs") + 1]) if "--epochs" in sys.argv else 3
    directory = args[0] if args and not args[0].isdigit() else "/usr/share/datasets/fashion-mnist"
    x, xt = load(directory, "train"), load(directory, "t10k")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(32),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(784, activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    timer = EpochTimer()
    timer.seconds = []
    model.fit(x, x, epochs=epochs, batch_size=256, shuffle=True, verbose=0, callbacks=[timer])
    mse = float(np.mean((model.predict(xt, batch_size=1000, verbose=0) - xt) ** 2))
    print(json.dumps({"impl": "keras", "backend": keras.backend.backend(), "op": "dense_autoencoder_784_128_32",
                      "epoch_seconds": [round(s, 3) for s in timer.seconds], "test_mse": round(mse, 5)}))


if __name__ == "__main__":
    main()
