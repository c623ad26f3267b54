#!/usr/bin/env bash
# Installs the Debian packages Neurite builds and tests with, when they are missing:
# zlib, libpng and libjpeg headers (Datasets links them), pkg-config (SwiftPM finds them
# through it), Fashion-MNIST (the demos' default data) and Open MPI (headers, library and mpirun,
# for the DistributedTraining module, its tests and the distributed-train demo), and the sequence
# demos' data: stock prices and Seattle weather (python3-vega-datasets, CSV files under
# /usr/lib/python3/dist-packages/vega_datasets/_data) and the lambda phage genome
# (bowtie2-examples, /usr/share/doc/bowtie2/examples/reference/lambda_virus.fa.gz), and libhdf5
# (libhdf5-dev, for KerasInterop's .keras weights files), and what Tools/neon-check needs to
# build the kernels for arm64 and run them emulated: qemu-user (qemu-aarch64) and Debian's aarch64
# cross sysroot (libc6-dev-arm64-cross; libgcc-12-dev-arm64-cross for crtbegin.o and libgcc). The Swift
# toolchain, with the clang that compiles our C targets, is part of the machine image.
# macOS: brew install pkg-config libpng jpeg-turbo open-mpi
set -euo pipefail
packages=(pkg-config zlib1g-dev libpng-dev libjpeg-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin
          python3-vega-datasets bowtie2-examples libhdf5-dev
          qemu-user libc6-dev-arm64-cross libgcc-12-dev-arm64-cross)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
