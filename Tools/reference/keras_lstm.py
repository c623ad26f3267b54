#!/usr/bin/env python3
"""The Keras side of Neurite's recurrent benchmark (issue 5): the same model as
`sequence-classifier --cell lstm` and `neurite-bench recurrent`, in Keras 3.

Fashion-MNIST (or MNIST) images read as 28 time steps of 28 features, LSTM(128) then Dense(10),
Adam 1e-3, softmax cross-entropy, batch 128. Prints one JSON line per epoch and a summary line
with the median seconds per epoch (training steps only, as Neurite's EpochTimer counts them) and
the test accuracy, so the two can be put side by side:

    python3 -m venv ~/.cache/neurite/keras-venv
    ~/.cache/neurite/keras-venv/bin/pip install tensorflow-cpu
    ~/.cache/neurite/keras-venv/bin/python Tools/reference/keras_lstm.py --epochs 2 [--dataset mnist] [--data DIR]

    swift run -c release sequence-classifier --epochs 2 --json     # the Neurite side

It reads the IDX files itself (gzip or plain) from --data, $NEURITE_DATA or
/usr/share/datasets/fashion-mnist, so nothing is downloaded. Without TensorFlow it says so and
exits with status 2. Reference figures on the 2-core machine of issue 5: Keras 3.15 on
TensorFlow 2.21, 9.8 to 11.3 s per epoch, test accuracy 0.8275 after 2 epochs (PyTorch CPU: 14 to
17 s per epoch).
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(directory, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no {stem}[.gz] in {directory}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["fashion", "mnist"], default="fashion")
    parser.add_argument("--data")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.0, help="the LSTM's dropout (neurite-bench's lstm_dropout: 0.2)")
    parser.add_argument("--recurrent-dropout", type=float, default=0.0, help="the LSTM's recurrent_dropout (lstm_dropout: 0.2)")
    args = parser.parse_args()

    directory = args.data or os.environ.get("NEURITE_DATA") or (
        "/usr/share/datasets/fashion-mnist" if args.dataset == "fashion" else os.path.expanduser("~/.cache/neurite/mnist"))
    try:
        import keras  # noqa: F401  (Keras 3, with the TensorFlow backend by default)
    except ImportError as error:
        print(json.dumps({"bench": "keras_lstm", "skipped": f"Keras/TensorFlow not importable: {error}"}))
        sys.exit(2)
    import keras

    keras.utils.set_random_seed(args.seed)
    x_train = read_idx(find(directory, "train-images-idx3-ubyte")).astype("float32") / 255
    y_train = read_idx(find(directory, "train-labels-idx1-ubyte")).astype("int64")
    x_test = read_idx(find(directory, "t10k-images-idx3-ubyte")).astype("float32") / 255
    y_test = read_idx(find(directory, "t10k-labels-idx1-ubyte")).astype("int64")

    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.LSTM(128, dropout=args.dropout, recurrent_dropout=args.recurrent_dropout),
        keras.layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(self.last - self.start)
            print(json.dumps({"bench": "keras_lstm", "epoch": epoch + 1, "seconds": round(self.seconds[-1], 3),
                              "loss": round(float(logs["loss"]), 4), "accuracy": round(float(logs["accuracy"]), 4),
                              "test_accuracy": round(float(logs.get("val_accuracy", float("nan"))), 4)}))

    timer = Timer()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, shuffle=True,
              validation_data=(x_test, y_test), callbacks=[timer], verbose=0)
    _, test_accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    print(json.dumps({"bench": "keras_lstm", "impl": f"keras-{keras.__version__}", "dataset": args.dataset,
                      "epochs": args.epochs, "batch_size": args.batch_size, "threads": os.cpu_count(),
                      "dropout": args.dropout, "recurrent_dropout": args.recurrent_dropout,
                      "median_seconds_per_epoch": round(float(np.median(timer.seconds)), 3),
                      "test_accuracy": round(float(test_accuracy), 4)}))


if __name__ == "__main__":
    main()
