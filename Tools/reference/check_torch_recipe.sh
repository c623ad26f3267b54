#!/usr/bin/env bash
# Checks the PyTorch recipe (Tools/reference/torch_from_neurite.py) end to end: trains the demo
# apps' models briefly with Neurite, saves them, runs each on random samples with
# `neurite-data predict`, loads the saved weights into torch.nn modules with the recipe, and
# compares the outputs (exit status 1 on any mismatch).
#
# Needs the PyTorch venv (Tools/reference/setup_venvs.sh --torch), which CI does not install
# (PyPI's torch wheel pulls gigabytes of CUDA libraries): run it by hand.
#
# Usage: Tools/reference/check_torch_recipe.sh [WORK_DIR]   (default: a fresh temporary folder)
# Environment: NEURITE_TORCH_PYTHON (default ~/.cache/neurite/torch-venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/../.."
python="${NEURITE_TORCH_PYTHON:-$HOME/.cache/neurite/torch-venv/bin/python}"
[ -x "$python" ] || { echo "no PyTorch venv at $python: run Tools/reference/setup_venvs.sh --torch" >&2; exit 2; }
work="${1:-$(mktemp -d)}"
mkdir -p "$work"

swift build -c release --product neurite-data >/dev/null
swift build -c release --product cnn >/dev/null
swift build -c release --product sequence-classifier >/dev/null
swift build -c release --product genome >/dev/null
bin="$(swift build -c release --show-bin-path)"

echo "training the demo models for one epoch into $work"
"$bin/cnn" --epochs 1 --output "$work/cnn" --json >/dev/null
for cell in lstm gru rnn; do
    "$bin/sequence-classifier" --cell "$cell" --units 32 --epochs 1 --output "$work/seq-$cell" --json >/dev/null
done
"$bin/genome" --epochs 1 --output "$work/genome" --json >/dev/null || echo "(genome demo skipped: it failed, see above)"

status=0
for json in $(find "$work" -name model.json | sort); do
    model="$(dirname "$json")"
    # Random samples of the model's input shape (token ids below the vocabulary for an Embedding).
    "$python" - "$model" "$work/x.f32" <<'PY'
import json, sys, numpy as np
saved = json.load(open(sys.argv[1] + "/model.json"))
shape = saved["build_input_shape"]
first = saved["model"]["layers"][0]
rng = np.random.default_rng(7)
if first["type"] == "Embedding":
    x = rng.integers(0, first["config"]["input_dim"], size=[64] + shape).astype("<f4")
else:
    x = rng.random([64] + shape, dtype=np.float32)
x.astype("<f4").tofile(sys.argv[2])
PY
    "$bin/neurite-data" predict --model "$model" --input "$work/x.f32" --output "$work/y.f32" >/dev/null
    "$python" Tools/reference/torch_from_neurite.py "$model" --check "$work/x.f32" "$work/y.f32" || status=1
done
exit $status
