#!/usr/bin/env python3
"""The PyTorch side of Neurite's training benchmark (`neurite-bench training`, issue 14).

Trains the models of `neurite-bench training` on the same data with the same settings (batch 128,
Adam 1e-3, inputs in 0...1) and prints one JSON line per model in the format of
Tools/reference/keras_training.py and of Neurite's lines:

    ~/.cache/neurite/torch-venv/bin/python Tools/reference/torch_training.py \\
        [--data DIR] [--epochs N] [--seed N] [--limit N] [--threads 2] \\
        [--models shallow_mlp,deep_mlp,course_cnn,batchnorm_cnn,lstm,dense_autoencoder,conv_autoencoder,rbm]

(the venv comes from `Tools/reference/setup_venvs.sh --torch`.) Eager mode, as a PyTorch user
trains: each step sets gradients to None, runs the forward pass, the loss, `backward()` and
`Adam.step()`, on a batch gathered from a seeded permutation. Images stay in PyTorch's own layout
(channels first, converted once at load, not timed). The classifiers train on cross-entropy from
logits and report test accuracy; the LSTM(128) reads an image's 28 rows as 28 steps; the autoencoders
(dense 784-128-32-128-784, and the convolutional one of Apps/autoencoder with code 32) train on mean
squared error and report the test mean squared error. `rbm` is a 784-256 restricted Boltzmann
machine trained by persistent contrastive divergence (PCD-1, batch 64, learning rate 0.05), the rule
of scikit-learn's BernoulliRBM and Neurite's RBM, written in PyTorch tensor operations; it reports the
mean test pseudo-likelihood. Seconds per epoch is the median over the epochs after the first (all
of them when there is one) of the training loop's time; single-image prediction is the median of 200 calls in eval mode under `torch.inference_mode()`.
`--threads` sets `torch.set_num_threads` (default 2, the cores of the machine the issue measured on).
`peak_rss_mb` is this process's peak so far (every model before it included).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_training import load  # noqa: E402  (the IDX reader; importing it does not import Keras)

RECONSTRUCT = {"dense_autoencoder", "conv_autoencoder"}


def models(nn):
    class LastStepLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(28, 128, batch_first=True)
            self.dense = nn.Linear(128, 10)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.dense(out[:, -1])

    return {
        "shallow_mlp": lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)),
        "deep_mlp": lambda: nn.Sequential(
            nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 128),
            nn.ReLU(), nn.Linear(128, 10)),
        "course_cnn": lambda: nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 8, 2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(200, 100), nn.ReLU(), nn.Linear(100, 10)),
        "batchnorm_cnn": lambda: nn.Sequential(
            nn.Conv2d(1, 32, 3, bias=False), nn.BatchNorm2d(32, eps=1e-3, momentum=0.01), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, bias=False), nn.BatchNorm2d(64, eps=1e-3, momentum=0.01), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10)),
        "lstm": LastStepLSTM,
        "dense_autoencoder": lambda: nn.Sequential(
            nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 32), nn.Linear(32, 128), nn.ReLU(),
            nn.Linear(128, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28))),
        # Conv2DTranspose(3x3, stride 2, "same") is padding 1 with one row and column of output padding.
        "conv_autoencoder": lambda: nn.Sequential(
            nn.Conv2d(1, 16, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 8, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(392, 32),
            nn.Linear(32, 392), nn.ReLU(), nn.Unflatten(1, (8, 7, 7)),
            nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(8, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.Conv2d(16, 1, 3, padding="same"), nn.Sigmoid()),
    }


def median_predict_ms(torch, model, one):
    model.eval()
    with torch.inference_mode():
        for _ in range(20):
            model(one)
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            model(one)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def train_network(torch, name, make, data, args):
    x, y, tx, ty = data
    reconstruct = name in RECONSTRUCT
    if name == "lstm":
        x, tx = x[:, 0], tx[:, 0]  # [N, 1, 28, 28] -> [N, 28 steps, 28 features]
    targets = x if reconstruct else y
    torch.manual_seed(args.seed)
    model = make()
    loss_fn = torch.nn.MSELoss() if reconstruct else torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    n = len(x)
    epoch_seconds = []
    model.train()
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, args.batch_size):
            index = order[start:start + args.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[index]), targets[index])
            loss.backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - t0)
    model.eval()
    with torch.inference_mode():
        outputs = torch.cat([model(tx[i:i + 1000]) for i in range(0, len(tx), 1000)])
    if reconstruct:
        metric = {"test_mse": round(float(((outputs - tx) ** 2).mean()), 5)}
    else:
        metric = {"test_accuracy": round(float((outputs.argmax(1) == ty).float().mean()), 4)}
    return n, epoch_seconds, metric, median_predict_ms(torch, model, tx[:1])


def train_rbm(torch, data, args, hidden=256, batch=64, learning_rate=0.05):
    """PCD-1 as scikit-learn's BernoulliRBM: per batch, positive hidden probabilities, one Gibbs step
    from the persistent chains, and the update from both phases' outer products."""
    x, tx = data[0].reshape(len(data[0]), -1), data[2].reshape(len(data[2]), -1)
    generator = torch.Generator().manual_seed(args.seed)
    visible = x.shape[1]
    weights = torch.randn(hidden, visible, generator=generator) * 0.01
    hidden_bias, visible_bias = torch.zeros(hidden), torch.zeros(visible)
    chains = torch.zeros(batch, hidden)
    epoch_seconds = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            v = x[order[start:start + batch]]
            h_pos = torch.sigmoid(v @ weights.T + hidden_bias)
            v_neg = torch.bernoulli(torch.sigmoid(chains @ weights + visible_bias), generator=generator)
            h_neg = torch.sigmoid(v_neg @ weights.T + hidden_bias)
            rate = learning_rate / len(v)
            weights += rate * (h_pos.T @ v - h_neg.T @ v_neg)
            hidden_bias += rate * (h_pos.sum(0) - h_neg.sum(0))
            visible_bias += rate * (v.sum(0) - v_neg.sum(0))
            chains = torch.bernoulli(h_neg, generator=generator)
        epoch_seconds.append(time.perf_counter() - t0)

    def free_energy(v):
        return -(v @ visible_bias) - torch.nn.functional.softplus(v @ weights.T + hidden_bias).sum(1)

    flip = torch.randint(0, visible, (len(tx),), generator=generator)
    flipped = tx.clone()
    rows = torch.arange(len(tx))
    flipped[rows, flip] = 1 - flipped[rows, flip]
    pseudo = visible * torch.nn.functional.logsigmoid(free_energy(flipped) - free_energy(tx))
    return len(x), epoch_seconds, {"test_pseudo_likelihood": round(float(pseudo.mean()), 3)}, None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", default="shallow_mlp,deep_mlp,course_cnn,batchnorm_cnn,lstm,dense_autoencoder,"
                                            "conv_autoencoder,rbm")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="use the first N training and test images only")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    makers = models(torch.nn)
    names = args.models.split(",")
    unknown = [name for name in names if name not in makers and name != "rbm"]
    if unknown:
        sys.exit(f"torch_training.py: unknown models {unknown}; known: {sorted(makers) + ['rbm']}")
    x, y, tx, ty = load(args.data)
    if args.limit:
        x, y, tx, ty = x[:args.limit], y[:args.limit], tx[:args.limit], ty[:args.limit]
    # NHWC as loaded -> NCHW, PyTorch's layout, once.
    data = (torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y),
            torch.from_numpy(np.ascontiguousarray(tx.transpose(0, 3, 1, 2))), torch.from_numpy(ty))
    for name in names:
        if name == "rbm":
            samples, seconds, metric, predict = train_rbm(torch, data, args)
        else:
            samples, seconds, metric, predict = train_network(torch, name, makers[name], data, args)
        line = {"bench": "training", "impl": "torch", "version": f"torch {torch.__version__}",
                "threads": torch.get_num_threads(), "model": name, "epochs": args.epochs,
                "batch_size": 64 if name == "rbm" else args.batch_size, "seed": args.seed, "samples": samples,
                "epoch_s": round(statistics.median(seconds[1:] or seconds), 3), **metric}
        if predict is not None:
            line["predict_one_ms"] = round(predict, 4)
        line["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
