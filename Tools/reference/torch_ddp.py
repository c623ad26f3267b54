#!/usr/bin/env python3
"""PyTorch reference for Neurite's data-parallel training benchmark: seconds per epoch and images
per second training on Fashion-MNIST with DistributedDataParallel over the gloo backend (CPU),
R processes with T threads each, against one plain process.

Two ranks, one thread each, per-rank batch 64:

    ~/.cache/neurite/torch-venv/bin/python -m torch.distributed.run --nproc_per_node 2 \
        Tools/reference/torch_ddp.py --model batchnorm --epochs 1 --batch-size 64 --threads 1

One process, one thread (without torch.distributed.run, or with WORLD_SIZE 1: a plain process,
no process group, no DDP wrapper, batch as given):

    ~/.cache/neurite/torch-venv/bin/python Tools/reference/torch_ddp.py \
        --model batchnorm --epochs 1 --batch-size 64 --threads 1

Options: --model course|batchnorm|lstm, --epochs N (1), --batch-size B per rank (64), --threads T
(torch.set_num_threads in every rank, 1), --data DIR (the four Fashion-MNIST IDX files, .gz or not;
/usr/share/datasets/fashion-mnist), --seed S (1).

Data: the whole training set in memory as float32 [60000, 1, 28, 28] in 0...1; each epoch a
DistributedSampler(shuffle=True, seed) gives every rank its 60000 / R indices, served in batches of
B by indexing the tensor (no DataLoader workers). Models:
  course:    Conv2d(1,16,5) relu, MaxPool2d(2), Conv2d(16,8,2) relu, MaxPool2d(2), Flatten,
             Linear(200,100) relu, Linear(100,10)
  batchnorm: Conv2d(1,32,3,bias=False), BatchNorm2d(32), relu, MaxPool2d(2),
             Conv2d(32,64,3,bias=False), BatchNorm2d(64), relu, MaxPool2d(2), Flatten,
             Linear(1600,128) relu, Dropout(0.3), Linear(128,10)
  lstm:      the 28 rows of an image as a sequence of 28-vectors, LSTM(28->128) and its last hidden
             state -> Linear(128,10)
Adam 1e-3, cross-entropy. Under DDP, BatchNorm statistics are per rank (rank 0's running buffers
are broadcast at each forward, DDP's default), not synchronised.

Rank 0 prints one JSON line. An epoch is timed on rank 0 from a barrier before its first step to a
barrier after its last, so it covers the slowest rank; "seconds_per_epoch" is the median over the
epochs (all of them are in "epoch_seconds"; the first includes DDP's first-iteration set-up).
"images_per_second" is the 60000 training images (all ranks together) over seconds_per_epoch.
"test_accuracy" is measured on rank 0 on the 10,000 test images after training.
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler


# ---- data ---------------------------------------------------------------------------------------

def read_idx(path):
    """An IDX file (plain or gzip) as a numpy array of its element type (u8 here)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        sys.exit(f"torch_ddp.py: {path} is not an unsigned-byte IDX file")
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(directory, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    sys.exit(f"torch_ddp.py: {stem}(.gz) not found in {directory}")


def load_split(directory, prefix):
    """(images [N,1,28,28] float32 in 0...1, labels [N] int64) for prefix "train" or "t10k"."""
    images = read_idx(find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(directory, f"{prefix}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# ---- models -------------------------------------------------------------------------------------

class RowLSTM(nn.Module):
    """Reads an image's rows as a sequence; classifies from the last hidden state."""

    def __init__(self, hidden=128):
        super().__init__()
        self.lstm = nn.LSTM(input_size=28, hidden_size=hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x):                  # x: [B, 1, 28, 28]
        _, (h, _) = self.lstm(x.squeeze(1))  # h: [1, B, hidden]
        return self.head(h[-1])


def make_model(name):
    if name == "course":
        # 28 -> conv5 -> 24 -> pool -> 12 -> conv2 -> 11 -> pool -> 5: 8 * 5 * 5 = 200.
        return nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 8, 2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(8 * 5 * 5, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "batchnorm":
        # 28 -> conv3 -> 26 -> pool -> 13 -> conv3 -> 11 -> pool -> 5: 64 * 5 * 5 = 1600.
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
    if name == "lstm":
        return RowLSTM()
    raise SystemExit(f"torch_ddp.py: unknown model {name}")


# ---- training -----------------------------------------------------------------------------------

def barrier(distributed):
    if distributed:
        dist.barrier()


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / len(y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["course", "batchnorm", "lstm"], default="course")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64, help="batch per rank")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads per rank")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    # torch.distributed.run sets RANK / WORLD_SIZE (and MASTER_ADDR / MASTER_PORT); without them
    # this is a single plain process.
    distributed = "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP also broadcasts rank 0's)

    x, y = load_split(args.data, "train")
    sampler = DistributedSampler(range(len(y)), num_replicas=world, rank=rank,
                                 shuffle=True, seed=args.seed)

    model = make_model(args.model)
    net = DistributedDataParallel(model) if distributed else model
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()

    epoch_seconds = []
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        order = torch.tensor(list(sampler))
        barrier(distributed)
        start = time.perf_counter()
        for i in range(0, len(order), args.batch_size):
            index = order[i:i + args.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x[index]), y[index])
            loss.backward()  # under DDP, gradients are all-reduced (averaged) across ranks here
            optimizer.step()
        barrier(distributed)
        epoch_seconds.append(time.perf_counter() - start)

    if rank == 0:
        tx, ty = load_split(args.data, "t10k")
        accuracy = evaluate(model, tx, ty)
        seconds = statistics.median(epoch_seconds)
        print(json.dumps({
            "library": "pytorch-ddp",
            "model": args.model,
            "ranks": world,
            "threads_per_rank": args.threads,
            "batch_per_rank": args.batch_size,
            "epochs": args.epochs,
            "seconds_per_epoch": round(seconds, 3),
            "epoch_seconds": [round(s, 3) for s in epoch_seconds],
            "images_per_second": round(len(y) / seconds, 1),
            "test_accuracy": round(accuracy, 4),
            "peak_rss_mb_rank0": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "version": f"torch {torch.__version__}",
        }), flush=True)

    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
