#!/usr/bin/env python3
"""The reference side of Neurite's kernel benchmark: numpy float32 (OpenBLAS sgemm).

Prints the same JSON lines as `neurite-bench`, with "impl": "numpy-openblas".
Thread count comes from the environment, so run it once per count:

    OPENBLAS_NUM_THREADS=1 python3 Tools/reference/numpy_reference.py
    OPENBLAS_NUM_THREADS=2 python3 Tools/reference/numpy_reference.py
    OPENBLAS_NUM_THREADS=1 python3 Tools/reference/numpy_reference.py gemm --sizes 1024,2048 --min-seconds 3

Timing follows neurite-bench: a warm-up, then the best of repetitions lasting >= 0.5 s.
"""
import json
import os
import sys
import time

import numpy as np

MIN_SECONDS = 0.1 if "--quick" in sys.argv else 0.5
if "--min-seconds" in sys.argv:
    MIN_SECONDS = float(sys.argv[sys.argv.index("--min-seconds") + 1])
THREADS = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count()))


def measure(body):
    body()
    best, reps, start = float("inf"), 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - start < MIN_SECONDS:
        t0 = time.perf_counter()
        body()
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return best


def emit(**fields):
    print(json.dumps(fields), flush=True)


rng = np.random.default_rng(42)
suites = sys.argv[1:2] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else ["gemm", "elementwise"]

if "gemm" in suites:
    cases = [(s, s, s, False, False, "square") for s in (64, 128, 256, 512, 1024, 2048)]
    for m, n, k in ((128, 784, 128), (128, 128, 784), (784, 128, 128)):
        for ta, tb in ((False, False), (True, False), (False, True)):
            cases.append((m, n, k, ta, tb, "layer"))
    if "--sizes" in sys.argv:  # like neurite-bench: only cases whose largest dimension is listed
        sizes = {int(x) for x in sys.argv[sys.argv.index("--sizes") + 1].split(",")}
        cases = [case for case in cases if max(case[:3]) in sizes]
    for m, n, k, ta, tb, label in cases:
        a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32)
        c = np.empty((m, n), dtype=np.float32)
        opa, opb = (a.T if ta else a), (b.T if tb else b)
        seconds = measure(lambda: np.matmul(opa, opb, out=c))
        emit(bench="gemm", impl="numpy-openblas", case=label, m=m, n=n, k=k, transA=ta, transB=tb,
             threads=THREADS, gflops=round(2 * m * n * k / seconds / 1e9, 3), ms=round(seconds * 1e3, 3))

if "elementwise" in suites:
    n = 1 << 24
    x = rng.uniform(-4, 4, n).astype(np.float32)
    y = rng.uniform(-4, 4, n).astype(np.float32)
    out = np.empty_like(x)
    copy = measure(lambda: np.copyto(out, x))
    emit(bench="elementwise", impl="numpy", op="copy", threads=1, elements=n, gbps=round(8 * n / copy / 1e9, 3))
    for name, nbytes, body in (
        ("add", 12 * n, lambda: np.add(x, y, out=out)),
        ("mul", 12 * n, lambda: np.multiply(x, y, out=out)),
        ("exp", 8 * n, lambda: np.exp(x, out=out)),
        ("tanh", 8 * n, lambda: np.tanh(x, out=out)),
        ("relu", 8 * n, lambda: np.maximum(x, 0, out=out)),
    ):
        s = measure(body)
        emit(bench="elementwise", impl="numpy", op=name, threads=1, elements=n,
             gbps=round(nbytes / s / 1e9, 3), vs_copy=round((nbytes / s) / (8 * n / copy), 3))
