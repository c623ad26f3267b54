#!/usr/bin/env bash
# Builds the DocC documentation of every library product with the Swift-DocC plugin
# (swift-docc-plugin, a dependency in Package.swift), treating every DocC warning as an error:
# a broken symbol link (``Name``), an unresolved <doc:Article> or a topic that names nothing
# fails the run.
#
#   Tools/build-docs.sh                     # every library module
#   Tools/build-docs.sh Datasets Recurrent  # only these
#
# Each module is built on its own, so one failure does not hide the others; the script goes on
# to the end, lists the modules that failed and exits 1 if any did (0 when all pass). The
# archives go to .build/plugins/Swift-DocC/outputs/<Module>.doccarchive. Environment:
#   NEURITE_DOCS_SCRATCH  a scratch path for SwiftPM instead of .build (for example to run
#                         beside another build of the package, which holds .build's lock).
# Time, on the 2-core machine: about 1.5 min for all nine modules when .build holds no debug
# build yet (the plugin's tools and each module's debug build), 26 to 60 s when it does (the machine is shared).
# Needs network access only if the plugin's package is not resolved yet. The plugin's build is a
# debug build of the module and its dependencies (symbol graphs), separate from a release build.
set -u
cd "$(dirname "$0")/.."

modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
    modules=(TensorCore Optimizers Layers Recurrent Datasets Unsupervised DistributedTraining KerasInterop Neurite)
fi

scratch=()
if [ -n "${NEURITE_DOCS_SCRATCH:-}" ]; then scratch=(--scratch-path "$NEURITE_DOCS_SCRATCH"); fi

failed=()
start=$(date +%s)
for module in "${modules[@]}"; do
    echo "== $module"
    t0=$(date +%s)
    # --disable-sandbox: the plugin writes its output under .build, outside the sandbox's reach on macOS.
    if swift package "${scratch[@]}" --disable-sandbox generate-documentation --target "$module" --warnings-as-errors; then
        echo "== $module: ok ($(( $(date +%s) - t0 )) s)"
    else
        echo "== $module: FAILED ($(( $(date +%s) - t0 )) s)"
        failed+=("$module")
    fi
done
echo "== documentation of ${#modules[@]} module(s) in $(( $(date +%s) - start )) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "== failed: ${failed[*]}" >&2
    exit 1
fi
