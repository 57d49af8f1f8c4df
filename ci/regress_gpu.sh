#!/usr/bin/env bash
# GPU runner: the same short Kaggle suite on the WebGPU engine, compared with its own baseline
# (GPU results are deterministic per device and driver, not across them, so the GPU baseline is
# separate from the CPU one and is made on the runner itself). Run it on the GPU machine from
# the repository root; needs Node/npm (for npx deno) and a WebGPU adapter.
#
#   ci/regress_gpu.sh [OUT]            compare with ci/baselines/kaggle-smoke-gpu.json
#   UPDATE=1 ci/regress_gpu.sh [OUT]   (re)make that baseline on this runner
set -euo pipefail
cd "$(dirname "$0")/.."
# On the GPU machine (after `source .carry/gpu-env.sh`, see ci/gpu_carry.sh) Deno is on PATH and
# resolves the carried packages offline; elsewhere npx fetches it.
if command -v deno >/dev/null; then DENO=(deno); RUN=(run --no-lock --cached-only -A); else
  DENO=(npx -y deno@2.9.6); RUN=(run -A); fi
OUT="${1:-results/ci-regress-gpu}"
BASELINE=ci/baselines/kaggle-smoke-gpu.json
# Every Table 3 method (FP32, PTQ, DQRM, LSQ, PACT, HAWQ) on the WebGPU engine.
SUITE=(kaggle --engine gpu --experiment table3
  --iterations 200 --scale 0.01 --test-samples 8192 --eval-every 50)
rm -rf "$OUT"
"${DENO[@]}" "${RUN[@]}" --v8-flags=--expose-gc cli/bench.ts "${SUITE[@]}" --quiet --out "$OUT"
if [[ "${UPDATE:-}" == 1 || ! -f "$BASELINE" ]]; then
  "${DENO[@]}" "${RUN[@]}" cli/regress.ts --baseline "$BASELINE" --update \
    --command "deno task bench ${SUITE[*]}" "$OUT"
  "${DENO[@]}" fmt "$BASELINE" >/dev/null # keep deno fmt --check clean
  echo "made $BASELINE on $(hostname); commit it to gate later runs"
else
  "${DENO[@]}" "${RUN[@]}" cli/regress.ts --baseline "$BASELINE" "$OUT"
fi
"${DENO[@]}" "${RUN[@]}" cli/report.ts "$OUT"
