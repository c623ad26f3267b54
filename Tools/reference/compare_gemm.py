#!/usr/bin/env python3
"""Side-by-side GEMM table from neurite-bench and numpy_reference.py JSON lines.

    python3 Tools/reference/compare_gemm.py NEURITE.jsonl NUMPY.jsonl

Several runs may be concatenated in each file: the best GFLOP/s per case is kept on both
sides (the machine is shared and noisy; the best run is the least disturbed one).
Prints a Markdown table: case, threads, Neurite, OpenBLAS, ratio.
"""
import json
import sys


def best(path):
    out = {}
    for line in open(path):
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if d.get("bench") != "gemm":
            continue
        key = (d["m"], d["n"], d["k"], d["transA"], d["transB"], d["threads"])
        out[key] = max(out.get(key, 0), d["gflops"])
    return out


ours, theirs = best(sys.argv[1]), best(sys.argv[2])
print("| M x N x K | op | threads | Neurite GFLOP/s | OpenBLAS GFLOP/s | ratio |")
print("|---|---|---:|---:|---:|---:|")
for key in ours:
    m, n, k, ta, tb, t = key
    if key not in theirs:
        continue
    op = ("A^T" if ta else "A") + " x " + ("B^T" if tb else "B")
    print(f"| {m} x {n} x {k} | {op} | {t} | {ours[key]:.0f} | {theirs[key]:.0f} | {ours[key] / theirs[key]:.2f} |")
