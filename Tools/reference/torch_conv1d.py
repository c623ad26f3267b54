#!/usr/bin/env python3
"""PyTorch reference for Neurite's `sequence` benchmark, case `conv1d` (issue 13): the genome model
on one batch of 64 one-hot DNA sequences of 200 bases, timed the way `neurite-bench sequence` times it.

    ~/.cache/neurite/torch-venv/bin/python Tools/reference/torch_conv1d.py [--threads 2] [--min-seconds 0.5]
    swift run -c release neurite-bench sequence                # the Neurite side
    ~/.cache/neurite/keras-venv/bin/python Tools/reference/keras_conv1d.py   # Keras

Model, in PyTorch's own layout (channels first, [64, 4, 200]; a PyTorch user keeps data that way,
so no transpose is timed): Conv1d(4, 64, 9, padding="same"), ReLU, MaxPool1d(3),
Conv1d(64, 64, 9, padding="same"), ReLU, AdaptiveMaxPool1d(1), Flatten, Linear(64, 1);
BCEWithLogitsLoss; Adam 1e-3. Eager mode, as a PyTorch user trains:
- forward: `model(x)` in eval mode under `torch.inference_mode()`;
- forward_backward: gradients set to None, a training forward, the loss and `loss.backward()`
  (the input needs no gradient, so the first layer skips it);
- train_step: forward_backward plus `optimizer.step()` (Adam), one training step.
Each op runs once to warm up, then repeats for at least --min-seconds (3 times at least); the best
repetition is reported, one JSON line per op. --threads sets `torch.set_num_threads` (and one
inter-op thread). The data are random one-hot bases and 0/1 labels.
"""
import argparse
import json
import sys
import time

BATCH, LENGTH, BASES, FILTERS, KERNEL = 64, 200, 4, 64, 9


def measure(min_seconds, body):
    body()  # warm-up: first-touch pages, thread start
    best, reps, start = float("inf"), 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        body()
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        import torch
        from torch import nn
    except ImportError as error:
        print(json.dumps({"bench": "sequence", "case": "conv1d", "skipped": f"PyTorch not importable: {error}"}))
        sys.exit(2)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)

    g = torch.Generator().manual_seed(13)
    bases = torch.randint(0, BASES, (BATCH, LENGTH), generator=g)
    x = nn.functional.one_hot(bases, BASES).float().permute(0, 2, 1).contiguous()  # [B, 4, T]
    y = torch.randint(0, 2, (BATCH, 1), generator=g).float()

    model = nn.Sequential(
        nn.Conv1d(BASES, FILTERS, KERNEL, padding="same"), nn.ReLU(),
        nn.MaxPool1d(3),
        nn.Conv1d(FILTERS, FILTERS, KERNEL, padding="same"), nn.ReLU(),
        nn.AdaptiveMaxPool1d(1), nn.Flatten(),
        nn.Linear(FILTERS, 1),
    )
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def forward():
        model.eval()
        with torch.inference_mode():
            model(x)

    def forward_backward():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()

    def train_step():
        forward_backward()
        optimizer.step()

    common = {"bench": "sequence", "case": "conv1d", "impl": f"torch-{torch.__version__}",
              "batch": BATCH, "length": LENGTH, "threads": args.threads}
    for op, body in [("forward", forward), ("forward_backward", forward_backward), ("train_step", train_step)]:
        seconds = measure(args.min_seconds, body)
        print(json.dumps({**common, "op": op, "ms": round(seconds * 1e3, 3)}), flush=True)


if __name__ == "__main__":
    main()
