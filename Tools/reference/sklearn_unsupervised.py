#!/usr/bin/env python3
"""scikit-learn / imbalanced-learn reference for neurite-bench's `unsupervised` suite.

Prints the same JSON lines as `swift run -c release neurite-bench unsupervised`, with
"impl": "sklearn":
  - rbm: BernoulliRBM(n_components=256, batch_size=64, learning_rate=0.05) on Fashion-MNIST in
    0...1: seconds per iteration (one fit with n_iter=5, divided by 5) and the mean test
    pseudo-likelihood (score_samples) after those 5 iterations.
  - smote: Fashion-MNIST with class 9 cut to its first 100 training images; SMOTE().fit_resample
    seconds (best of 3), then LogisticRegression(max_iter=100) without resampling and with
    RandomOverSampler / SMOTE: class-9 recall and macro-F1 on the test set.

Usage: ~/.cache/neurite/sk-venv/bin/python Tools/reference/sklearn_unsupervised.py [DATA_DIR] [--skip-logistic]
(DATA_DIR defaults to /usr/share/datasets/fashion-mnist; pip install scikit-learn imbalanced-learn numpy)
"""
import gzip
import json
import os
import sys
import time

import numpy as np


def load(directory, prefix):
    def read(name):
        path = os.path.join(directory, name)
        opener = gzip.open if path.endswith(".gz") else open
        if not os.path.exists(path):
            path = path[:-3]
            opener = open
        with opener(path, "rb") as f:
            return f.read()
    images = np.frombuffer(read(f"{prefix}-images-idx3-ubyte.gz")[16:], dtype=np.uint8)
    labels = np.frombuffer(read(f"{prefix}-labels-idx1-ubyte.gz")[8:], dtype=np.uint8)
    return images.reshape(-1, 784).astype(np.float32) / 255, labels.astype(np.int64)


def emit(**fields):
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in fields.items()}), flush=True)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    directory = args[0] if args else "/usr/share/datasets/fashion-mnist"
    x, y = load(directory, "train")
    xt, yt = load(directory, "t10k")

    from sklearn.neural_network import BernoulliRBM
    rbm = BernoulliRBM(n_components=256, batch_size=64, learning_rate=0.05, n_iter=5, random_state=0)
    t0 = time.perf_counter()
    rbm.fit(x)
    total = time.perf_counter() - t0
    pl = float(rbm.score_samples(xt).mean())
    emit(bench="unsupervised", impl="sklearn", op="rbm_fashion_256h_b64_lr0.05", iterations=5,
         mean_s_per_iter=total / 5, test_pseudo_likelihood=pl)

    from imblearn.over_sampling import SMOTE, RandomOverSampler
    nines = np.flatnonzero(y == 9)
    keep = np.sort(np.concatenate([np.flatnonzero(y != 9), nines[:100]]))
    xi, yi = x[keep], y[keep]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        xs, ys = SMOTE(random_state=0).fit_resample(xi, yi)
        best = min(best, time.perf_counter() - t0)
    emit(bench="unsupervised", impl="sklearn", op="smote_fashion_class9_100", samples_out=int(len(ys)), seconds=best)
    if "--skip-logistic" in sys.argv:
        return
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, recall_score
    xr, yr = RandomOverSampler(random_state=0).fit_resample(xi, yi)
    for name, (a, b) in [("none", (xi, yi)), ("smote", (xs, ys)), ("random", (xr, yr))]:
        t0 = time.perf_counter()
        model = LogisticRegression(max_iter=100).fit(a, b)
        seconds = time.perf_counter() - t0
        p = model.predict(xt)
        emit(bench="unsupervised", impl="sklearn", op="logistic_regression_after_resampling", resampling=name,
             train_seconds=seconds, class9_recall=float(recall_score(yt, p, labels=[9], average=None)[0]),
             macro_f1=float(f1_score(yt, p, average="macro")))


if __name__ == "__main__":
    main()
