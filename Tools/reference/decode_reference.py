#!/usr/bin/env python3
"""The reference side of neurite-bench's image decode cases: Debian's `djpeg` (libjpeg-turbo) and
`pngtopnm` (netpbm, on libpng), timed on the same files.

    swift run -c release neurite-bench datasets        # writes the generated images first
    python3 Tools/reference/decode_reference.py [--runs N] [--data DIR] [--images DIR]

Each command decodes one file to PPM/PGM written to /dev/null. It is timed with `hyperfine`
(apt-get install hyperfine; `-N`: no shell in between) when it is installed, else with a loop of N
runs of subprocess. A process's start-up is not decoding, so the same tool is also timed on a
1 x 1 image of its format; "ms" is the best run on the file minus the best run on the 1 x 1 image,
and "ms_raw" and "startup_ms" give the two terms. neurite-bench also reports the best repetition.

Prints one JSON line per file, the shape of neurite-bench's lines, with "impl": "djpeg" or "pngtopnm".
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))


def option(name, default):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


RUNS = int(option("--runs", "30"))
DATA = option("--data", os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "data")))
IMAGES = option("--images", os.environ.get("NEURITE_BENCH_IMAGES")
                or os.path.join(os.environ.get("TMPDIR", "/tmp").rstrip("/") or "/tmp", "neurite-bench-images"))

# The same files, under the same names, as Tools/Benchmarks/DatasetsBench.swift.
FILES = [
    ("jpeg/libjpeg-turbo/testorig.jpg", os.path.join(DATA, "jpeg/libjpeg-turbo/testorig.jpg")),
    ("jpeg/go/video-001.progressive.jpeg", os.path.join(DATA, "jpeg/go/video-001.progressive.jpeg")),
    ("pngsuite/basn2c08.png", os.path.join(DATA, "pngsuite/basn2c08.png")),
    ("pngsuite/basi2c16.png", os.path.join(DATA, "pngsuite/basi2c16.png")),
    ("generated/large-rgb-1024.png", os.path.join(IMAGES, "large-rgb-1024.png")),
    ("generated/large-baseline-1024.jpg", os.path.join(IMAGES, "large-baseline-1024.jpg")),
    ("generated/large-progressive-1024.jpg", os.path.join(IMAGES, "large-progressive-1024.jpg")),
]
PROBES = {"djpeg": os.path.join(IMAGES, "tiny-1x1.jpg"), "pngtopnm": os.path.join(IMAGES, "tiny-1x1.png")}


def command(tool, path):
    # djpeg's defaults (islow DCT, fancy upsampling) are the settings Neurite's decoder uses.
    return [tool, "-outfile", "/dev/null", path] if tool == "djpeg" else [tool, path]


def best_ms_hyperfine(argv):
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        subprocess.run(["hyperfine", "-N", "--style", "none", "--warmup", "3", "--runs", str(RUNS),
                        "--output", "null", "--export-json", report.name, " ".join(argv)],
                       check=True, stdout=subprocess.DEVNULL)
        result = json.load(open(report.name))["results"][0]
    return min(result["times"]) * 1e3, result["mean"] * 1e3


def best_ms_loop(argv):
    times = []
    for i in range(RUNS + 3):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i >= 3:  # warm-up runs
            times.append(time.perf_counter() - t0)
    return min(times) * 1e3, sum(times) / len(times) * 1e3


def main():
    timer = best_ms_hyperfine if shutil.which("hyperfine") else best_ms_loop
    timer_name = "hyperfine" if timer is best_ms_hyperfine else "subprocess loop"
    missing = [p for _, p in FILES + list(PROBES.items()) if not os.path.exists(p)]
    if missing:
        print(f"missing files (run `swift run -c release neurite-bench datasets` first for the generated ones): {missing}",
              file=sys.stderr)
    startup = {}
    for tool, probe in PROBES.items():
        if shutil.which(tool) and os.path.exists(probe):
            startup[tool] = timer(command(tool, probe))
            print(json.dumps({"bench": "datasets", "impl": tool, "op": "startup_1x1", "timer": timer_name,
                              "ms": round(startup[tool][0], 3), "mean_ms": round(startup[tool][1], 3)}))
    for name, path in FILES:
        if not os.path.exists(path):
            continue
        is_png = name.endswith(".png")
        tool = "pngtopnm" if is_png else "djpeg"
        if not shutil.which(tool):
            print(f"{tool} not installed (apt-get install {'netpbm' if is_png else 'libjpeg-turbo-progs'}); {name} skipped",
                  file=sys.stderr)
            continue
        best, mean = timer(command(tool, path))
        base = startup.get(tool, (0.0, 0.0))[0]
        print(json.dumps({"bench": "datasets", "impl": tool, "op": "png_decode" if is_png else "jpeg_decode",
                          "source": "file", "file": name, "timer": timer_name, "ms": round(best - base, 3),
                          "ms_raw": round(best, 3), "mean_ms_raw": round(mean, 3), "startup_ms": round(base, 3)}))


main()
