#!/usr/bin/env python3
"""A paper model of Neurite's data-parallel scaling: per-step compute against per-step
communication, for each demo model, at 2 to 64 machines on 10 and 100 Gb/s links.

    python3 Tools/reference/scaling_model.py

Inputs (edit them when the measurements change):
- compute_ms: one rank's compute per step at batch 64 per rank, one thread, measured on this
  2-core machine by `mpirun -np 2 -x NEURITE_THREADS=1 distributed-train --model M --epochs 1 --json`
  as seconds_per_epoch * (1 - communication_share) / steps (469 steps of 64 per rank).
- gradient_mb: the bytes all-reduced per step (the same run's gradient_megabytes_per_step).
- small: the small collectives per step (2 for fit's agreement and logs, plus 2 per
  synchronised BatchNormalization layer).

Model (no overlap of communication with computation, which Neurite does not do yet):
  ring all-reduce of the gradients: 2 (R-1)/R * bytes / bandwidth + 2 (R-1) * latency
  each small collective (recursive doubling): log2(R) * latency
  efficiency = compute / (compute + communication); speed-up = R * efficiency.
Link figures assumed: 10 Gb/s Ethernet with TCP, 1.1 GB/s achieved and 25 us latency;
100 Gb/s InfiniBand/RoCE, 11 GB/s achieved and 3 us latency.
"""
import math

MODELS = {
    # name: (compute_ms per step at batch 64, gradient MB per step, small collectives per step)
    "shallow": (0.40, 0.388, 2),
    "deep": (3.32, 2.165, 2),
    "course": (2.64, 0.084, 2),
    "batchnorm": (16.8, 0.859, 6),
    "lstm": (11.4, 0.312, 2),
}
LINKS = {"10 Gb/s": (1.1e9, 25e-6), "100 Gb/s": (11e9, 3e-6)}
RANKS = [2, 4, 8, 16, 32, 64]


def efficiency(compute_ms, mb, small, ranks, bandwidth, latency):
    t = compute_ms / 1e3
    bytes_ = mb * 1048576
    ring = 2 * (ranks - 1) / ranks * bytes_ / bandwidth + 2 * (ranks - 1) * latency
    others = small * math.log2(ranks) * latency
    return t / (t + ring + others)


def main():
    header = "| model | compute per step | gradients per step | link | " + " | ".join(f"{r}" for r in RANKS) + " |"
    print(header)
    print("|" + "---|" * (4 + len(RANKS)))
    for name, (compute, mb, small) in MODELS.items():
        for link, (bandwidth, latency) in LINKS.items():
            cells = [f"{efficiency(compute, mb, small, r, bandwidth, latency):.2f}" for r in RANKS]
            print(f"| {name} | {compute:.2f} ms | {mb:.2f} MB | {link} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
