#!/usr/bin/env bash
# Short CPU regression suite: trains the Kaggle Table 3 experiment (FP32, PTQ, HAWQ and DQRM at
# INT4) at a tiny scale on one thread, compares it with the committed baseline, and rebuilds the
# report (checked in headless Chromium when /usr/bin/chromium exists). About a minute on 2 cores.
#
#   ci/regress_cpu.sh [OUT]            compare with ci/baselines/kaggle-smoke.json
#   UPDATE=1 ci/regress_cpu.sh [OUT]   rewrite the baseline from this run (after an intended change)
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=(npx -y deno@2.9.6)
OUT="${1:-results/ci-regress-cpu}"
BASELINE=ci/baselines/kaggle-smoke.json
SUITE=(kaggle --experiment table3 --iterations 200 --scale 0.001 --test-samples 4000 --eval-every 50 --threads 1)
rm -rf "$OUT"
"${DENO[@]}" run -A --v8-flags=--expose-gc cli/bench.ts "${SUITE[@]}" --quiet --out "$OUT"
if [[ "${UPDATE:-}" == 1 ]]; then
  "${DENO[@]}" run -A cli/regress.ts --baseline "$BASELINE" --update \
    --command "deno task bench ${SUITE[*]}" "$OUT"
  "${DENO[@]}" fmt "$BASELINE" >/dev/null # keep deno fmt --check clean
else
  "${DENO[@]}" run -A cli/regress.ts --baseline "$BASELINE" "$OUT"
fi
"${DENO[@]}" run -A cli/report.ts "$OUT" --check
