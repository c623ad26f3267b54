#!/usr/bin/env python3
"""Load a model saved by Neurite (`Sequential.save(to:)`: model.json + model.safetensors) into the
equivalent `torch.nn` modules, with every transpose written out.

The recipe, layer by layer (Neurite keeps Keras' layouts; PyTorch has its own):

  Neurite / Keras                          PyTorch
  Dense kernel [in, out], bias [out]       nn.Linear weight [out, in] = kernel.T, bias = bias
  Conv2D kernel [kh, kw, cin, cout]        nn.Conv2d weight [cout, cin, kh, kw] = kernel.permute(3, 2, 0, 1)
  Conv1D kernel [k, cin, cout]             nn.Conv1d weight [cout, cin, k] = kernel.permute(2, 1, 0)
  images NHWC, sequences [B, T, F]         images NCHW (x.permute(0, 3, 1, 2)); Conv1d wants [B, F, T]
  Flatten of NHWC (h, w, c order)          flatten after permuting back to NHWC, so the Dense after it
                                           sees the same order (else its rows would need permuting)
  BatchNormalization gamma, beta,          nn.BatchNorm2d/1d weight, bias, running_mean, running_var,
  moving_mean, moving_variance, epsilon    eps (momentum only matters in training)
  MaxPooling2D / AveragePooling2D valid    nn.MaxPool2d / nn.AvgPool2d (kernel, stride)
  padding "same" (TensorFlow's rule)       nn.ZeroPad2d with the extra pixel at the bottom/right
  LSTM kernel [F, 4U], recurrent [U, 4U],  nn.LSTM weight_ih_l0 = kernel.T, weight_hh_l0 = recurrent.T,
  bias [4U]; gates i, f, c, o              bias_ih_l0 = bias, bias_hh_l0 = 0 (same gate order i, f, g, o)
  GRU (reset_after) kernel [F, 3U],        nn.GRU: gates reordered from z, r, h to r, z, n on the 3U axis;
  recurrent [U, 3U], bias [2, 3U]          weight_ih = reorder(kernel).T, weight_hh = reorder(recurrent).T,
                                           bias_ih = reorder(bias[0]), bias_hh = reorder(bias[1])
  SimpleRNN kernel [F, U], recurrent [U,U] nn.RNN(tanh): weight_ih = kernel.T, weight_hh = recurrent.T,
                                           bias_ih = bias, bias_hh = 0
  Embedding embeddings [V, D]              nn.Embedding weight = embeddings (ids come in as floats)
  return_sequences false                   the last time step of the output

The safetensors file is read with json and numpy alone (an 8-byte little-endian header length, a
JSON header of dtype/shape/offsets, then the raw data), so the recipe needs only torch and numpy.

Usage:
  python torch_from_neurite.py MODEL_DIR                      # print the torch module
  python torch_from_neurite.py MODEL_DIR --check X.f32 Y.f32  # compare with Neurite's outputs

`--check` runs the torch module on the raw float32 samples X.f32 (laid out as Neurite's per-sample
input shape) and compares with Y.f32, the outputs `neurite-data predict --model MODEL_DIR --input
X.f32 --output Y.f32` wrote; it exits with status 1 when the largest difference exceeds --tolerance.
Tools/reference/check_torch_recipe.sh runs the whole check on the demo apps' models.
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    """Every tensor of a safetensors file, as float32 numpy arrays by name."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise ValueError(f"{path}: header length {header_len} runs past the end of the file")
    header = json.loads(data[8:8 + header_len])
    body = data[8 + header_len:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {entry['dtype']}, the recipe reads F32 only")
        start, end = entry["data_offsets"]
        array = np.frombuffer(body[start:end], dtype="<f4").reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors


ACTIVATIONS = {
    "linear": nn.Identity, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1), "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU,
    "softplus": nn.Softplus, "swish": nn.SiLU, "silu": nn.SiLU,
}


def activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} has no torch equivalent in this recipe")
    return ACTIVATIONS[name]()


class ToChannelsFirst(nn.Module):
    """NHWC (Neurite) to NCHW (torch), or [B, T, F] to [B, F, T] for Conv1d."""
    def forward(self, x):
        return x.permute(0, 3, 1, 2) if x.dim() == 4 else x.permute(0, 2, 1)


class ToChannelsLast(nn.Module):
    """Back from torch's channels-first layout to Neurite's."""
    def forward(self, x):
        return x.permute(0, 2, 3, 1) if x.dim() == 4 else x.permute(0, 2, 1)


class LastStep(nn.Module):
    """The recurrent layer's output at the last time step (Keras' return_sequences=False)."""
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        out, _ = self.rnn(x)
        return out[:, -1, :]


class AllSteps(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        out, _ = self.rnn(x)
        return out


class GlobalPool(nn.Module):
    """Mean or max over every axis between the batch and the channels (channels-last input)."""
    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        return flat.mean(dim=1) if self.kind == "mean" else flat.amax(dim=1)


class IdsToLong(nn.Module):
    """Embedding ids arrive as floats in the raw sample files."""
    def __init__(self, embedding):
        super().__init__()
        self.embedding = embedding

    def forward(self, x):
        return self.embedding(x.round().long())


def same_padding(size, kernel, stride, dilation=1):
    """TensorFlow's "same": total padding split with the extra pixel after (bottom/right)."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def gru_reorder(t, units):
    """Keras' GRU gate blocks z, r, h along the last axis to torch's r, z, n."""
    z, r, h = t[..., :units], t[..., units:2 * units], t[..., 2 * units:]
    return torch.cat([r, z, h], dim=-1)


def build(model_dir):
    """The torch module equivalent to the Neurite model in `model_dir`, in eval mode."""
    with open(f"{model_dir}/model.json") as f:
        saved = json.load(f)
    weights = read_safetensors(f"{model_dir}/model.safetensors")
    shape = list(saved.get("build_input_shape") or saved["model"]["config"].get("input_shape") or [])
    if not shape:
        raise ValueError(f"{model_dir}: the saved model has no input shape")
    modules = []
    channels_first = False  # whether the running tensor is in torch's channels-first layout

    def w(layer_name, role):
        key = f"{layer_name}.{role}"
        if key not in weights:
            raise ValueError(f"{model_dir}: weight {key} is missing")
        return weights.pop(key)

    def to_first():
        nonlocal channels_first
        if not channels_first:
            modules.append(ToChannelsFirst())
            channels_first = True

    def to_last():
        nonlocal channels_first
        if channels_first:
            modules.append(ToChannelsLast())
            channels_first = False

    for record in saved["model"]["layers"]:
        kind, c = record["type"], record["config"]
        name = c.get("name", "")
        if kind in ("Conv2D", "Conv1D"):
            two_d = kind == "Conv2D"
            if c.get("data_format", "channels_last") != "channels_last":
                raise ValueError(f"{name}: channels_first convolutions are not in this recipe")
            to_first()
            kernel = w(name, "kernel")
            ks = c["kernel_size"] if two_d else [c["kernel_size"][0] if isinstance(c["kernel_size"], list) else c["kernel_size"]]
            strides = c["strides"] if isinstance(c["strides"], list) else [c["strides"]]
            dilation = c.get("dilation_rate", [1] * len(ks))
            dilation = dilation if isinstance(dilation, list) else [dilation]
            spatial = shape[:-1]
            if c["padding"] == "same":
                pads = [same_padding(spatial[i], ks[i], strides[i], dilation[i]) for i in range(len(ks))]
                # ZeroPad2d/ConstantPad1d take (left, right[, top, bottom]): the last axis first.
                flat = [p for pair in reversed(pads) for p in pair]
                modules.append(nn.ZeroPad2d(tuple(flat)) if two_d else nn.ConstantPad1d(tuple(flat), 0.0))
                spatial = [spatial[i] + sum(pads[i]) for i in range(len(ks))]
            elif c["padding"] == "causal" and not two_d:
                left = (ks[0] - 1) * dilation[0]
                modules.append(nn.ConstantPad1d((left, 0), 0.0))
                spatial = [spatial[0] + left]
            elif c["padding"] != "valid":
                raise ValueError(f"{name}: padding {c['padding']!r} is not in this recipe")
            conv_type = nn.Conv2d if two_d else nn.Conv1d
            conv = conv_type(kernel.shape[-2], c["filters"], tuple(ks), stride=tuple(strides),
                             dilation=tuple(dilation), bias=c.get("use_bias", True))
            with torch.no_grad():
                # [kh, kw, cin, cout] -> [cout, cin, kh, kw]; [k, cin, cout] -> [cout, cin, k]
                conv.weight.copy_(kernel.permute(3, 2, 0, 1) if two_d else kernel.permute(2, 1, 0))
                if c.get("use_bias", True):
                    conv.bias.copy_(w(name, "bias"))
            modules += [conv, activation(c.get("activation", "linear"))]
            spatial = [(spatial[i] - ((ks[i] - 1) * dilation[i] + 1)) // strides[i] + 1 for i in range(len(ks))]
            shape = spatial + [c["filters"]]
        elif kind in ("MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "AveragePooling1D"):
            if c.get("padding", "valid") != "valid":
                raise ValueError(f"{name}: pooling with padding {c['padding']!r} is not in this recipe")
            to_first()
            pool = c["pool_size"] if isinstance(c["pool_size"], list) else [c["pool_size"]]
            strides = c.get("strides") or pool
            strides = strides if isinstance(strides, list) else [strides]
            table = {"MaxPooling2D": nn.MaxPool2d, "AveragePooling2D": nn.AvgPool2d,
                     "MaxPooling1D": nn.MaxPool1d, "AveragePooling1D": nn.AvgPool1d}
            modules.append(table[kind](tuple(pool), stride=tuple(strides)))
            shape = [(shape[i] - pool[i]) // strides[i] + 1 for i in range(len(pool))] + [shape[-1]]
        elif kind in ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D"):
            if c.get("keepdims", False):
                raise ValueError(f"{name}: keepdims is not in this recipe")
            to_last()
            modules.append(GlobalPool("mean" if "Average" in kind else "max"))
            shape = [shape[-1]]
        elif kind == "BatchNormalization":
            if c.get("axis", -1) not in (-1, len(shape)):
                raise ValueError(f"{name}: BatchNormalization over axis {c['axis']} is not in this recipe")
            channels = shape[-1]
            if len(shape) == 1:
                to_last()
                bn = nn.BatchNorm1d(channels, eps=c["epsilon"])
            else:
                to_first()
                bn = nn.BatchNorm2d(channels, eps=c["epsilon"]) if len(shape) == 3 else nn.BatchNorm1d(channels, eps=c["epsilon"])
            with torch.no_grad():
                bn.weight.copy_(w(name, "gamma") if c.get("scale", True) else torch.ones(channels))
                bn.bias.copy_(w(name, "beta") if c.get("center", True) else torch.zeros(channels))
                bn.running_mean.copy_(w(name, "moving_mean"))
                bn.running_var.copy_(w(name, "moving_variance"))
            modules.append(bn)
        elif kind == "Activation":
            modules.append(activation(c["activation"]))
        elif kind == "ReLU":
            modules.append(nn.ReLU())
        elif kind == "Flatten":
            to_last()  # flatten in Neurite's (h, w, c) order, so the next Dense needs no row permutation
            modules.append(nn.Flatten())
            shape = [int(np.prod(shape))]
        elif kind == "Reshape":
            to_last()
            target = c["target_shape"]
            modules.append(nn.Unflatten(1, tuple(target)) if len(shape) == 1 else nn.Sequential(nn.Flatten(), nn.Unflatten(1, tuple(target))))
            shape = list(target)
        elif kind == "Dropout":
            modules.append(nn.Dropout(c["rate"]))  # identity in eval mode, as in Neurite's predict
        elif kind == "Dense":
            to_last()
            kernel = w(name, "kernel")
            linear = nn.Linear(kernel.shape[0], kernel.shape[1], bias=c.get("use_bias", True))
            with torch.no_grad():
                linear.weight.copy_(kernel.T)  # [in, out] -> [out, in]
                if c.get("use_bias", True):
                    linear.bias.copy_(w(name, "bias"))
            modules += [linear, activation(c.get("activation", "linear"))]
            shape = shape[:-1] + [c["units"]]
        elif kind == "Embedding":
            table = w(name, "embeddings")
            embedding = nn.Embedding(table.shape[0], table.shape[1])
            with torch.no_grad():
                embedding.weight.copy_(table)
            modules.append(IdsToLong(embedding))
            shape = shape + [table.shape[1]]
        elif kind in ("LSTM", "GRU", "SimpleRNN"):
            to_last()
            units = c["units"]
            if c.get("activation", "tanh") != "tanh" or c.get("recurrent_activation", "sigmoid") not in ("sigmoid",):
                raise ValueError(f"{name}: torch's {kind} has fixed tanh/sigmoid activations")
            if c.get("go_backwards", False) or c.get("stateful", False):
                raise ValueError(f"{name}: go_backwards/stateful are not in this recipe")
            kernel, recurrent = w(name, "kernel"), w(name, "recurrent_kernel")
            use_bias = c.get("use_bias", True)
            bias = w(name, "bias") if use_bias else None
            features = kernel.shape[0]
            if kind == "LSTM":
                rnn = nn.LSTM(features, units, batch_first=True)
                w_ih, w_hh = kernel.T, recurrent.T  # gate order i, f, c(g), o in both
                b_ih = bias if use_bias else torch.zeros(4 * units)
                b_hh = torch.zeros(4 * units)
            elif kind == "GRU":
                rnn = nn.GRU(features, units, batch_first=True)
                w_ih, w_hh = gru_reorder(kernel, units).T, gru_reorder(recurrent, units).T
                b_ih = gru_reorder(bias[0], units) if use_bias else torch.zeros(3 * units)
                b_hh = gru_reorder(bias[1], units) if use_bias else torch.zeros(3 * units)
            else:
                rnn = nn.RNN(features, units, batch_first=True, nonlinearity="tanh")
                w_ih, w_hh = kernel.T, recurrent.T
                b_ih = bias if use_bias else torch.zeros(units)
                b_hh = torch.zeros(units)
            with torch.no_grad():
                rnn.weight_ih_l0.copy_(w_ih)
                rnn.weight_hh_l0.copy_(w_hh)
                rnn.bias_ih_l0.copy_(b_ih)
                rnn.bias_hh_l0.copy_(b_hh)
            sequences = c.get("return_sequences", False)
            modules.append(AllSteps(rnn) if sequences else LastStep(rnn))
            shape = [shape[0], units] if sequences else [units]
        else:
            raise ValueError(f"{name}: layer type {kind} is not in this recipe")
    to_last()
    if weights:
        raise ValueError(f"{model_dir}: weights not used by any layer: {sorted(weights)}")
    return nn.Sequential(*modules).eval(), list(saved.get("build_input_shape") or [])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--check", nargs=2, metavar=("INPUT_F32", "NEURITE_OUTPUT_F32"))
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest allowed |torch - neurite| relative to max(1, |neurite|)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    module, input_shape = build(args.model_dir)
    if not args.check:
        print(module)
        return 0
    x = np.fromfile(args.check[0], dtype="<f4")
    per_sample = int(np.prod(input_shape))
    x = torch.from_numpy(x.reshape([-1] + input_shape).copy())
    expected = np.fromfile(args.check[1], dtype="<f4").reshape(x.shape[0], -1)
    with torch.no_grad():
        got = module(x).reshape(x.shape[0], -1).numpy()
    if got.shape != expected.shape:
        print(f"shape mismatch: torch {got.shape}, neurite {expected.shape}")
        return 1
    error = float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))
    agree = float(np.mean(got.argmax(1) == expected.argmax(1))) if got.shape[1] > 1 else 1.0
    verdict = "ok" if error <= args.tolerance else "MISMATCH"
    print(f"{args.model_dir}: {x.shape[0]} samples of {input_shape} ({per_sample} values), "
          f"max relative difference {error:.2e}, argmax agreement {agree:.3f}: {verdict}")
    return 0 if error <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
