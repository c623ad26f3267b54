#!/usr/bin/env bash
# Creates the Python virtual environments that Neurite's reference benchmarks run in, when missing:
#
#   ~/.cache/neurite/keras-venv   tensorflow-cpu (Keras 3 and h5py come      always
#                                 with it), numpy, safetensors: the reference the
#                                 interoperability tests run (KerasInteropTests, SafeTensorsTests)
#   ~/.cache/neurite/torch-venv   torch, torchvision, pillow, numpy          only with --torch
#
# Usage:
#   Tools/reference/setup_venvs.sh            # Keras venv only (what .ci/run calls)
#   Tools/reference/setup_venvs.sh --torch    # Keras venv and the PyTorch venv
#
# Environment: PYTHON (default python3) is the interpreter the venvs are made from;
# NEURITE_VENV_ROOT (default ~/.cache/neurite) is where they go.
#
# Idempotent: a venv whose Python already imports its packages is left alone. A venv that exists
# but cannot import them (an interrupted install) is completed with pip, not recreated.
#
# The torch venv takes PyPI's default torch wheel, which on Linux x86-64 pulls the CUDA libraries
# (a few GB). That is accepted here: the venv only serves the benchmark scripts, which run on CPU.
# If torchvision cannot be installed, torch + pillow + numpy is enough for the scripts.
set -euo pipefail

python="${PYTHON:-python3}"
root="${NEURITE_VENV_ROOT:-$HOME/.cache/neurite}"

want_torch=0
for arg in "$@"; do
    case "$arg" in
        --torch) want_torch=1 ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup_venvs.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

# has_modules VENV MODULE...: true when VENV's Python imports every MODULE.
has_modules() {
    local venv="$1"; shift
    [ -x "$venv/bin/python" ] || return 1
    local modules
    modules="$(IFS=,; echo "$*")"
    TF_CPP_MIN_LOG_LEVEL=3 "$venv/bin/python" -c "import $modules" >/dev/null 2>&1
}

# make_venv VENV: creates VENV (when missing) with an up-to-date pip.
make_venv() {
    local venv="$1"
    if [ ! -x "$venv/bin/python" ]; then
        mkdir -p "$(dirname "$venv")"
        "$python" -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --upgrade pip
}

keras_venv="$root/keras-venv"
if has_modules "$keras_venv" tensorflow keras numpy h5py safetensors; then
    echo "keras-venv: present ($keras_venv)"
else
    echo "keras-venv: installing tensorflow-cpu into $keras_venv"
    make_venv "$keras_venv"
    "$keras_venv/bin/python" -m pip install --quiet tensorflow-cpu numpy h5py safetensors
fi

if [ "$want_torch" -eq 1 ]; then
    torch_venv="$root/torch-venv"
    if has_modules "$torch_venv" torch PIL numpy; then
        echo "torch-venv: present ($torch_venv)"
    else
        echo "torch-venv: installing torch, torchvision, pillow, numpy into $torch_venv"
        make_venv "$torch_venv"
        if ! "$torch_venv/bin/python" -m pip install --quiet torch torchvision pillow numpy; then
            echo "torch-venv: torchvision failed to install; installing torch, pillow, numpy only" >&2
            "$torch_venv/bin/python" -m pip install --quiet torch pillow numpy
        fi
    fi
fi

# Report what each venv ended up with.
if [ -x "$keras_venv/bin/python" ]; then
    TF_CPP_MIN_LOG_LEVEL=3 "$keras_venv/bin/python" -c 'import tensorflow as tf, keras; print(f"keras-venv: tensorflow {tf.__version__}, keras {keras.__version__}")' 2>/dev/null
fi
if [ "$want_torch" -eq 1 ]; then
    "$torch_venv/bin/python" -c 'import torch, PIL; print(f"torch-venv: torch {torch.__version__}, pillow {PIL.__version__}")'
fi
