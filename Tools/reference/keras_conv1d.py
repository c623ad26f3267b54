#!/usr/bin/env python3
"""Keras reference for Neurite's `sequence` benchmark, case `conv1d` (issue 13): the genome model
on one batch of 64 one-hot DNA sequences of 200 bases, timed the way `neurite-bench sequence` times it.

    ~/.cache/neurite/keras-venv/bin/python Tools/reference/keras_conv1d.py [--threads 2] [--min-seconds 0.5]
    swift run -c release neurite-bench sequence                # the Neurite side
    ~/.cache/neurite/torch-venv/bin/python Tools/reference/torch_conv1d.py   # PyTorch

Model (channels last, as Neurite): Input(200, 4), Conv1D(64, 9, padding="same", activation="relu"),
MaxPooling1D(3), Conv1D(64, 9, padding="same", activation="relu"), GlobalMaxPooling1D(), Dense(1);
binary cross-entropy from logits; Adam 1e-3. Each op is a `tf.function` (what `fit` and `predict`
run; Keras does not use XLA on a CPU-only machine, so neither do we):
- forward: `model(x, training=False)`;
- forward_backward: a training forward, the loss, and `tape.gradient` for the trainable variables
  (TensorFlow skips the first layer's input gradient, nothing asks for it);
- train_step: forward_backward plus `optimizer.apply_gradients` (Adam), what one `fit` step does.
Each op runs once to warm up (and trace), then repeats for at least --min-seconds (3 times at
least); the best repetition is reported, one JSON line per op. --threads sets TensorFlow's
intra-op and inter-op pools. The data are random one-hot bases and 0/1 labels (the arithmetic does
not depend on the values). Without TensorFlow it says so and exits with status 2.
"""
import argparse
import json
import os
import sys
import time

BATCH, LENGTH, BASES, FILTERS, KERNEL = 64, 200, 4, 64, 9


def measure(min_seconds, body):
    body()  # warm-up: tracing, first-touch pages, thread start
    best, reps, start = float("inf"), 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        body()
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-/inter-op threads")
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import numpy as np
        import tensorflow as tf
        import keras
    except ImportError as error:
        print(json.dumps({"bench": "sequence", "case": "conv1d", "skipped": f"Keras/TensorFlow not importable: {error}"}))
        sys.exit(2)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)

    rng = np.random.default_rng(13)
    x = np.eye(BASES, dtype="float32")[rng.integers(0, BASES, size=(BATCH, LENGTH))]
    y = rng.integers(0, 2, size=(BATCH, 1)).astype("float32")
    x, y = tf.constant(x), tf.constant(y)

    model = keras.Sequential([
        keras.Input(shape=(LENGTH, BASES)),
        keras.layers.Conv1D(FILTERS, KERNEL, padding="same", activation="relu"),
        keras.layers.MaxPooling1D(3),
        keras.layers.Conv1D(FILTERS, KERNEL, padding="same", activation="relu"),
        keras.layers.GlobalMaxPooling1D(),
        keras.layers.Dense(1),
    ])
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
    optimizer = keras.optimizers.Adam(1e-3)
    variables = model.trainable_variables

    @tf.function
    def forward(x):
        return model(x, training=False)

    @tf.function
    def forward_backward(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, variables)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    common = {"bench": "sequence", "case": "conv1d", "impl": f"keras-{keras.__version__}-tf-{tf.__version__}",
              "batch": BATCH, "length": LENGTH, "threads": args.threads}
    ops = [("forward", lambda: forward(x).numpy()),
           ("forward_backward", lambda: [g.numpy() for g in forward_backward(x, y)]),
           ("train_step", lambda: train_step(x, y).numpy())]
    for op, body in ops:
        seconds = measure(args.min_seconds, body)
        print(json.dumps({**common, "op": op, "ms": round(seconds * 1e3, 3)}), flush=True)


if __name__ == "__main__":
    main()
