#!/usr/bin/env bash
# Builds Packages/CKernels and Tools/neon-check/neon_check.c for aarch64 (clang --target
# aarch64-linux-gnu against Debian's cross sysroot, linked statically with ld.lld) and runs the
# result under qemu-aarch64: every NEON kernel against the portable path and naive references.
#
#   Tools/neon-check/run.sh             build and run the check (exit status is the check's)
#   Tools/neon-check/run.sh --controls  also build deliberately broken NEON kernels (copies of the
#                                       sources with one line changed) and require the check to
#                                       fail on each: the check can catch what it claims to
#
# Needs (Tools/install-deps.sh installs them): qemu-user, libc6-dev-arm64-cross and
# libgcc-12-dev-arm64-cross; the clang of the Swift toolchain (or $CLANG). Nothing here runs
# natively on arm64, and no timing is taken: under qemu, speed means nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

controls=0
for arg in "$@"; do
    case "$arg" in
    --controls) controls=1 ;;
    *) echo "run.sh: unknown option $arg (expected --controls)" >&2; exit 2 ;;
    esac
done

clang="${CLANG:-}"
if [ -z "$clang" ]; then
    if command -v swift >/dev/null 2>&1 && [ -x "$(dirname "$(readlink -f "$(command -v swift)")")/clang" ]; then
        clang="$(dirname "$(readlink -f "$(command -v swift)")")/clang"
    else
        clang="$(command -v clang || true)"
    fi
fi
[ -n "$clang" ] || { echo "run.sh: no clang found (set CLANG)" >&2; exit 2; }
command -v qemu-aarch64 >/dev/null || { echo "run.sh: qemu-aarch64 missing (Debian qemu-user; Tools/install-deps.sh)" >&2; exit 2; }
[ -d /usr/aarch64-linux-gnu/include ] || { echo "run.sh: aarch64 sysroot missing (libc6-dev-arm64-cross; Tools/install-deps.sh)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cross=(--target=aarch64-linux-gnu --gcc-toolchain=/usr -O2 -Wall -Wextra -Werror)

# build SRC_DIR OUT: the kernels as SwiftPM compiles them (default contraction), the check with
# contraction off so its float references are the formulas as written.
build() {
    local src="$1" out="$2" objs=()
    for f in "$src"/*.c; do
        "$clang" "${cross[@]}" -I "$src/include" -c "$f" -o "$out.$(basename "$f").o"
        objs+=("$out.$(basename "$f").o")
    done
    "$clang" "${cross[@]}" -ffp-contract=off -I "$src/include" -c Tools/neon-check/neon_check.c -o "$out.check.o"
    "$clang" "${cross[@]}" -fuse-ld=lld -static "${objs[@]}" "$out.check.o" -lm -o "$out"
}

build Packages/CKernels "$work/neon_check"
echo "neon-check: built with $("$clang" --version | head -1), running under $(qemu-aarch64 --version | head -1)"
qemu-aarch64 "$work/neon_check"

[ "$controls" -eq 1 ] || exit 0

# Each control: file, the exact text to replace, its broken replacement, what it breaks.
controls_list=(
    "gemm.c|N_ROW(7, a1, 3)|N_ROW(7, a1, 2)|GEMM micro-kernel: row 7 multiplies by row 6's A value"
    "gemm.c|vst1q_f32(cr + 8, r2); }|}|GEMM micro-kernel: full tiles never store their last 4 columns"
    "vmath.c|p = vfmaq_f32(vdupq_n_f32(C_E1), p, r);|p = vfmaq_f32(vdupq_n_f32(C_E1 * 1.0001f), p, r);|NEON exp: one polynomial coefficient off by 1e-4"
    "vmath.c|for (; i + 4 <= n; i += 4) vst1q_f32(y + i, core(vld1q_f32(x + i)));|for (; i + 4 <= n; i += 4) (void)0;|NEON vector math: the single-vector step skipped"
    "winograd.c|r1 = t1_ + t2_;|r1 = t1_ - t2_;|Winograd input transform: one row's sign flipped"
    "winograd.c|o3 = b_ + CK_SPLAT(8) * e_ + (m5);|o3 = b_ + CK_SPLAT(8) * e_;|Winograd output transform: the last row misses its last term"
    "winograd.c|m4 = g_ - h_;|m4 = g_ + h_;|Winograd output adjoint (kernel gradient): one row's sign flipped"
    "norm.c|#define RELU_PASSES(a, x, b) ((a) * (x) + (b) > 0)|#define RELU_PASSES(a, x, b) ((a) * (x) + (b) < 0)|batch norm: the recomputed relu mask inverted"
    "conv.c|for (int64_t t = whole; t < taps; ++t)|for (int64_t t = whole; t < taps - 1; ++t)|NEON kernel gradient: the last tap left out"
    "ck_lanes.h|static void name##_neon params { narrow_run args; }|static void name##_neon params { (void)0; }|every CK_LANE_PATHS NEON instance does nothing"
)
status=0
for entry in "${controls_list[@]}"; do
    IFS='|' read -r file from to what <<<"$entry"
    rm -rf "$work/src" && cp -r Packages/CKernels "$work/src"
    python3 - "$work/src/$file" "$from" "$to" <<'PY'
import sys
path, old, new = sys.argv[1:4]
text = open(path).read()
if text.count(old) < 1:
    sys.exit(f"control text not found in {path}: {old}")
open(path, "w").write(text.replace(old, new, 1))
PY
    if ! build "$work/src" "$work/control" 2>"$work/control.log"; then
        # A broken kernel may also leave unused variables behind: build it without -Werror.
        cross=(--target=aarch64-linux-gnu --gcc-toolchain=/usr -O2 -w)
        build "$work/src" "$work/control"
        cross=(--target=aarch64-linux-gnu --gcc-toolchain=/usr -O2 -Wall -Wextra -Werror)
    fi
    if qemu-aarch64 "$work/control" >"$work/control.out" 2>&1; then
        echo "CONTROL NOT CAUGHT: $what" >&2
        status=1
    else
        echo "control caught: $what ($(grep -m1 '^FAIL' "$work/control.out" | cut -c1-150))"
    fi
done
exit $status
