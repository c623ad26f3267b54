#!/usr/bin/env python3
"""The Keras side of Neurite's training benchmark (`neurite-bench training`).

Trains the same models as Neurite's demos, on the same data, with the same settings (batch 128,
Adam 1e-3, inputs scaled to 0...1, no shuffling differences that matter for speed), and prints one
JSON line per model in the format `neurite-bench training` prints for Neurite:

    ~/.cache/neurite/keras-venv/bin/python Tools/reference/keras_training.py \
        [--data DIR] [--epochs N] [--seed N] [--limit N] \
        [--models shallow_mlp,deep_mlp,course_cnn,batchnorm_cnn,lstm,dense_autoencoder,conv_autoencoder]

The classifiers train on softmax cross-entropy and report test accuracy; the LSTM(128) reads the 28
rows of an image as 28 steps; the autoencoders (dense 784-128-32-128-784 and the convolutional one of
Apps/autoencoder, code 32) train on mean squared error to rebuild their input and report the test
mean squared error. `--limit N` uses the first N training and test images only (smoke runs).

Seconds per epoch is the median over the epochs after the first (all of them when there is one) of the time `fit` spends per epoch (measured by a
callback, so data loading and evaluation are left out, as on Neurite's side). Single-image
prediction is the median of 200 calls of `model.predict_on_batch` on one image after a warm-up.
Threads: TensorFlow's defaults (all cores), as a Keras user gets them.
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    sys.exit(f"keras_training.py: {stem}(.gz) not found in {directory}")


def load(directory):
    def images(stem):
        return (read_idx(find(directory, stem)).astype(np.float32) / 255.0)[..., None]

    def labels(stem):
        return read_idx(find(directory, stem)).astype(np.int64)

    return (images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte"),
            images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte"))


def models(keras):
    layers = keras.layers
    return {
        "shallow_mlp": lambda: keras.Sequential([
            keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10)]),
        "deep_mlp": lambda: keras.Sequential([
            keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(512, activation="relu"),
            layers.Dense(256, activation="relu"), layers.Dense(128, activation="relu"), layers.Dense(10)]),
        "course_cnn": lambda: keras.Sequential([
            keras.Input((28, 28, 1)), layers.Conv2D(16, (5, 5), activation="relu"), layers.MaxPooling2D((2, 2)),
            layers.Conv2D(8, (2, 2), activation="relu"), layers.MaxPooling2D((2, 2)), layers.Flatten(),
            layers.Dense(100, activation="relu"), layers.Dense(10)]),
        "batchnorm_cnn": lambda: keras.Sequential([
            keras.Input((28, 28, 1)), layers.Conv2D(32, (3, 3), use_bias=False), layers.BatchNormalization(),
            layers.Activation("relu"), layers.MaxPooling2D((2, 2)), layers.Conv2D(64, (3, 3), use_bias=False),
            layers.BatchNormalization(), layers.Activation("relu"), layers.MaxPooling2D((2, 2)), layers.Flatten(),
            layers.Dense(128, activation="relu"), layers.Dropout(0.3), layers.Dense(10)]),
        "lstm": lambda: keras.Sequential([keras.Input((28, 28)), layers.LSTM(128), layers.Dense(10)]),
        "dense_autoencoder": lambda: keras.Sequential([
            keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(32),
            layers.Dense(128, activation="relu"), layers.Dense(784, activation="sigmoid"), layers.Reshape((28, 28, 1))]),
        "conv_autoencoder": lambda: keras.Sequential([
            keras.Input((28, 28, 1)), layers.Conv2D(16, (3, 3), padding="same", activation="relu"),
            layers.MaxPooling2D((2, 2)), layers.Conv2D(8, (3, 3), padding="same", activation="relu"),
            layers.MaxPooling2D((2, 2)), layers.Flatten(), layers.Dense(32),
            layers.Dense(7 * 7 * 8, activation="relu"), layers.Reshape((7, 7, 8)),
            layers.Conv2DTranspose(8, (3, 3), strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(16, (3, 3), strides=2, padding="same", activation="relu"),
            layers.Conv2D(1, (3, 3), padding="same", activation="sigmoid")]),
    }


RECONSTRUCT = {"dense_autoencoder", "conv_autoencoder"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", default="shallow_mlp,deep_mlp,course_cnn,batchnorm_cnn,lstm,dense_autoencoder,"
                                            "conv_autoencoder")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="use the first N training and test images only")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    x, y, tx, ty = load(args.data)
    if args.limit:
        x, y, tx, ty = x[:args.limit], y[:args.limit], tx[:args.limit], ty[:args.limit]
    makers = models(keras)
    unknown = [name for name in args.models.split(",") if name not in makers]
    if unknown:
        sys.exit(f"keras_training.py: unknown models {unknown}; known: {sorted(makers)}")
    for name in args.models.split(","):
        keras.utils.set_random_seed(args.seed)
        model = makers[name]()
        reconstruct = name in RECONSTRUCT
        if reconstruct:
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
            inputs, targets, test_inputs, test_targets = x, x, tx, tx
        else:
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
            inputs, targets, test_inputs, test_targets = x, y, tx, ty
        if name == "lstm":
            inputs, test_inputs = inputs[..., 0], test_inputs[..., 0]
        epoch_seconds = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                epoch_seconds.append(time.perf_counter() - self.t0)

        model.fit(inputs, targets, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=[Timer()])
        if reconstruct:
            metric = {"test_mse": round(float(np.mean((model.predict(test_inputs, batch_size=1000, verbose=0)
                                                       - test_targets) ** 2)), 5)}
        else:
            _, accuracy = model.evaluate(test_inputs, test_targets, batch_size=1000, verbose=0)
            metric = {"test_accuracy": round(float(accuracy), 4)}
        one = test_inputs[:1]
        for _ in range(20):
            model.predict_on_batch(one)
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            model.predict_on_batch(one)
            times.append(time.perf_counter() - t0)
        print(json.dumps({
            "bench": "training", "impl": "keras", "version": f"keras {keras.__version__}, tensorflow {tf.__version__}",
            "model": name, "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
            "samples": int(len(inputs)), "epoch_s": round(statistics.median(epoch_seconds[1:] or epoch_seconds), 3), **metric,
            "predict_one_ms": round(statistics.median(times) * 1e3, 4),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }), flush=True)


if __name__ == "__main__":
    main()
