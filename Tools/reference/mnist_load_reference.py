#!/usr/bin/env python3
"""The reference side of Neurite's MNIST load timing: Python `gzip` + numpy `frombuffer`.

Loads MNIST train images from the official .gz file into a float32 array scaled to 0...1,
shaped [60000, 28, 28, 1], the way most numpy loaders do:

    python3 Tools/reference/mnist_load_reference.py [path/to/train-images-idx3-ubyte.gz]

Prints the best and median of a few repetitions (after one warm-up), in seconds.
"""
import gzip
import os
import statistics
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
default = os.path.join(here, "..", "..", "..", "shared", "data", "mnist", "train-images-idx3-ubyte.gz")
path = sys.argv[1] if len(sys.argv) > 1 else default


def load(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[4:8], "big")
    images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 28, 28, 1)
    return images.astype(np.float32) / 255.0


def measure(body, reps=7):
    body()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        body()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


x = load(path)
assert x.shape == (60000, 28, 28, 1), x.shape
best, median = measure(lambda: load(path))
print(f"numpy gzip+frombuffer: shape {x.shape}, mean {x.mean() * 255:.4f}, best {best:.3f} s, median {median:.3f} s")
