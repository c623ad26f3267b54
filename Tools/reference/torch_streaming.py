#!/usr/bin/env python3
"""PyTorch reference for Neurite's streaming-training benchmark: images per second training the
course CNN from an image folder (class subfolders of PNG files), decoding every image on the fly
with PIL through a `DataLoader`, as a PyTorch user would.

    ~/.cache/neurite/torch-venv/bin/python Tools/reference/torch_streaming.py \
        --data /tmp/fmnist-train-png [--epochs 1] [--batch-size 128] [--workers 1] [--threads 2] \
        [--decode-only] [--seed 1]

The venv comes from `Tools/reference/setup_venvs.sh --torch`; the folder from
`neurite-data export --images train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz
--output /tmp/fmnist-train-png`.

Data: class subfolders sorted by name give label indices 0, 1, ...; files within a class are sorted
by name. Each PNG is decoded with PIL to 8-bit grayscale (resized to 28 x 28 only if it is not
already that size) and becomes a float32 tensor [1, 28, 28] in 0...1.
Loader: DataLoader(batch_size, shuffle=True, num_workers=W, persistent_workers=W > 0); with W = 0
the training process decodes the images itself.
Model: Conv2d(1,16,5) relu, MaxPool2d(2), Conv2d(16,8,2) relu, MaxPool2d(2), Flatten,
Linear(200,100) relu, Linear(100,10); Adam 1e-3; cross-entropy. --threads sets
torch.set_num_threads in the training process (worker processes keep PyTorch's default of 1).
--decode-only iterates the loader without a model, to measure decoding alone.

Prints one JSON line per epoch. "seconds" is the wall clock from asking the loader for its first
batch to the end of the last step, so it includes starting the worker processes in the first
epoch (persistent workers are then reused), but not listing the folder ("list_seconds") or building
the model. "peak_rss_mb" is this process's peak RSS plus its children's: children that have exited
count through getrusage(RUSAGE_CHILDREN) (the largest one's peak, as Linux reports it; the helper
that `import torch` runs is left out), live worker
processes through their VmHWM in /proc. Forked workers share unchanged pages with the parent, so
the sum overstates the real footprint (each worker's VmHWM counts PyTorch's libraries again);
"rss_self_mb" and "rss_children_mb" give the parts, and "rss_children_private_mb" the workers'
private (unshared) memory at the end of the epoch, which is what they really add.
"""
import argparse
import json
import os
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

# `import torch` runs a helper subprocess; as a fork of this process its ru_maxrss is this
# process's size at the time. It is not part of the benchmark, so memory_mb() leaves it out.
CHILDREN_MAXRSS_AT_IMPORT = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


class ImageFolderDataset(Dataset):
    """Images in class subfolders: DIR/<class>/<file>. Decodes one image per __getitem__."""

    def __init__(self, root, size=(28, 28)):
        self.size = size
        self.classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
        paths, labels = [], []
        for label, name in enumerate(self.classes):
            folder = os.path.join(root, name)
            for file in sorted(os.listdir(folder)):
                if file.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(folder, file))
                    labels.append(label)
        if not paths:
            raise SystemExit(f"torch_streaming.py: no images under {root}")
        # One numpy array of bytes rather than a list of 60k+ Python strings: forked workers touch
        # the list's reference counts and so copy its pages, which inflates their memory.
        self.paths = np.array([p.encode() for p in paths])
        self.labels = np.array(labels, dtype=np.int64)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        with Image.open(self.paths[index].decode()) as image:
            image = image.convert("L")
            if image.size != self.size:
                image = image.resize(self.size, Image.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
        x = torch.from_numpy(pixels.copy()).unsqueeze(0).float().div_(255.0)  # [1, 28, 28]
        return x, int(self.labels[index])


def course_cnn():
    # 28x28 -> conv5 -> 24 -> pool -> 12 -> conv2 -> 11 -> pool -> 5: 8 * 5 * 5 = 200 features.
    return nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 8, 2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 5 * 5, 100), nn.ReLU(),
        nn.Linear(100, 10),
    )


def live_children():
    """Process ids of this process's live children (the DataLoader's workers)."""
    me = str(os.getpid())
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # Field 4 is the parent's pid; field 2, the name, may hold spaces: split after ')'.
                    if f.read().rsplit(")", 1)[1].split()[1] == me:
                        pids.append(entry)
            except (OSError, IndexError):
                continue  # the process went away
    return pids


def proc_kib(path, field):
    """A 'Field:  N kB' value from a /proc file, in KiB; 0 when unreadable."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mb():
    """Peak RSS figures in MiB (ru_maxrss and VmHWM are in KiB on Linux).

    total: this process's peak plus its children's: exited children through
    getrusage(RUSAGE_CHILDREN) (when it has grown since the imports), live ones (persistent
    workers) through their VmHWM.
    children_private: the live children's private (unshared) memory now, from smaps_rollup:
    what the workers add on top of the pages they share with this process after fork.
    """
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if children <= CHILDREN_MAXRSS_AT_IMPORT:
        children = 0  # only the short-lived helper that `import torch` runs has exited so far
    private = 0
    for pid in live_children():
        children += proc_kib(f"/proc/{pid}/status", "VmHWM")
        private += (proc_kib(f"/proc/{pid}/smaps_rollup", "Private_Clean")
                    + proc_kib(f"/proc/{pid}/smaps_rollup", "Private_Dirty"))
    mb = lambda kib: round(kib / 1024, 1)  # noqa: E731
    return {"peak_rss_mb": mb(own + children), "rss_self_mb": mb(own),
            "rss_children_mb": mb(children), "rss_children_private_mb": mb(private)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of class subfolders of images")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--decode-only", action="store_true", help="iterate the loader without training")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    dataset = ImageFolderDataset(args.data)
    list_seconds = time.perf_counter() - t0

    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        generator=torch.Generator().manual_seed(args.seed),
    )

    model = optimizer = None
    if not args.decode_only:
        model = course_cnn()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()

    for epoch in range(args.epochs):
        images = 0
        loss_sum = 0.0
        start = time.perf_counter()
        for x, y in loader:
            if model is not None:
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                loss_sum += loss.item() * len(y)
            images += len(y)
        seconds = time.perf_counter() - start

        record = {
            "library": "pytorch",
            "what": "decode" if args.decode_only else "train",
            "epoch": epoch + 1,
            "images": images,
            "seconds": round(seconds, 3),
            "images_per_second": round(images / seconds, 1),
            "workers": args.workers,
            "threads": args.threads,
            "batch_size": args.batch_size,
            **memory_mb(),
            "list_seconds": round(list_seconds, 3),
            "data": os.path.abspath(args.data),
            "version": f"torch {torch.__version__}",
        }
        if model is not None:
            record["mean_loss"] = round(loss_sum / images, 4)
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
