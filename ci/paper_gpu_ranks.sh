#!/usr/bin/env bash
# The paper's data-parallel experiments on N GPU ranks (Workers, one WebGPU engine each,
# gradients compressed on the GPU and exchanged every iteration), into one results folder:
#   Table 4: the bytes each worker sends per iteration, uncompressed (accounting: counted, never
#            run), sparse and sparse + INT8 (cli/bench.ts --experiment table4), and the sparse
#            and sparse + INT8 exchanges measured on the ranks, ms/it and bytes per worker
#            against one GPU engine at the same global batch (cli/bench_gpu_dp.ts);
#   Table 6: INT4 DQRM on one engine and on N GPU ranks under the four gradient settings;
#   Table 7: FP32 and DQRM with the embeddings, the MLP or both at INT4, each on N GPU ranks.
# Rank r runs on GPU r when the Vulkan device-select layer lists at least N adapters (carried in
# .carry/vklayer, see ci/gpu_carry.sh), else every rank on GPU 0; RANK_GPUS=0,0,1,1 chooses.
# Run from the repository root (on the GPU machine after `source .carry/gpu-env.sh`):
#
#   ci/paper_gpu_ranks.sh N [OUT]        N in 2, 4, 8 (the paper's worker counts)
#
# Settings (environment): TABLES (default 4,6,7), SCALE (Kaggle table scale, default 1: the
# full 2.16 GB tables), ITERATIONS (training iterations of tables 6 and 7, and the batches
# table 4 counts; default 400), TEST_SAMPLES (default 16384), EVAL_EVERY (default 100),
# DP_ITERATIONS (timed iterations of the measured table 4 rows, default 20), RANK_GPUS.
# Writes OUT/suite/ (one JSON per run and report.html: the report's "Tables 4, 6 by workers"
# and Table 7 sections), OUT/table4-gpu-ranks.{json,txt} and OUT/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:?usage: ci/paper_gpu_ranks.sh N [OUT] (N GPU ranks: 2, 4 or 8)}"
case "$N" in 2 | 4 | 8) ;; *)
  echo "ci/paper_gpu_ranks.sh: expected N in 2, 4, 8 (the paper's worker counts) but found '$N'" >&2
  exit 2
  ;;
esac
OUT="${2:-results/paper-gpu-ranks-$N}"
TABLES="${TABLES:-4,6,7}"
SCALE="${SCALE:-1}"
ITERATIONS="${ITERATIONS:-400}"
TEST_SAMPLES="${TEST_SAMPLES:-16384}"
EVAL_EVERY="${EVAL_EVERY:-100}"
DP_ITERATIONS="${DP_ITERATIONS:-20}"
# On the GPU machine (after `source .carry/gpu-env.sh`) Deno is on PATH and resolves the carried
# packages offline; elsewhere npx fetches it.
if command -v deno >/dev/null; then DENO=(deno); OFFLINE=(--no-lock --cached-only); else
  DENO=(npx -y deno@2.9.6); OFFLINE=(); fi
RUN=(run "${OFFLINE[@]}" -A)
has() { [[ ",$TABLES," == *",$1,"* ]]; }

if [[ -z "${RANK_GPUS:-}" ]]; then
  listed=$("${DENO[@]}" eval "${OFFLINE[@]}" 'import { listAdapters } from "./engine/gpu/adapter_select.ts";
    console.log((await listAdapters())?.length ?? 1)')
  if ((listed >= N)); then RANK_GPUS=$(seq -s, 0 $((N - 1))); else RANK_GPUS=0; fi
  echo "paper_gpu_ranks: $listed adapter(s) listed; rank GPUs $RANK_GPUS"
fi
rm -rf "$OUT"
mkdir -p "$OUT"
# The flags every suite run shares (the resume check of bench requires the same in both calls).
COMMON=(kaggle --engine gpu --scale "$SCALE" --iterations "$ITERATIONS"
  --test-samples "$TEST_SAMPLES" --eval-every "$EVAL_EVERY" --quiet --out "$OUT/suite")
bench() { "${DENO[@]}" "${RUN[@]}" --v8-flags=--expose-gc cli/bench.ts "${COMMON[@]}" "$@"; }

# Tables 4 and 6: the runs of N workers (Table 6's on GPU ranks) and Table 6's one engine.
RUNS=()
has 4 && RUNS+=(--run "t4-dp$N-uncompressed" --run "t4-dp$N-sparse" --run "t4-dp$N-sparse-int8")
if has 6; then
  RUNS+=(--dp-mode workers --rank-gpus "$RANK_GPUS" --run t6-single)
  for p in sparse sparse-emb8 sparse-int8 sparse-int8-ec; do RUNS+=(--run "t6-dp$N-$p"); done
fi
EXPERIMENTS=$(echo "$TABLES" | tr ',' '\n' | grep -E '^[46]$' | sed 's/^/table/' | paste -sd,)
if [[ -n "$EXPERIMENTS" ]]; then
  bench --experiment "$EXPERIMENTS" "${RUNS[@]}"
fi
# Table 7: every run on N GPU ranks (sparse FP32 gradients, lossless).
if has 7; then
  bench --experiment table7 --workers "$N" --dp-mode workers --rank-gpus "$RANK_GPUS"
fi
# Table 4 measured: the exchanges on N ranks at the suite's global batch of 128.
if has 4; then
  "${DENO[@]}" "${RUN[@]}" cli/bench_gpu_dp.ts --ranks "$N" --batch-size $((128 / N)) \
    --compression sparse,sparse-int8 --scale "$SCALE" --iterations "$DP_ITERATIONS" \
    --gpus "$RANK_GPUS" --out "$OUT/table4-gpu-ranks.json" | tee "$OUT/table4-gpu-ranks.txt"
fi
if [[ -d "$OUT/suite" ]]; then "${DENO[@]}" "${RUN[@]}" cli/report.ts "$OUT/suite"; fi
{
  echo "# The paper's tables $TABLES on $N GPU ranks"
  echo
  echo "\`ci/paper_gpu_ranks.sh $N\` on $(hostname), $(date -u +%Y-%m-%dT%H:%M:%SZ); rank GPUs" \
    "$RANK_GPUS; Kaggle table scale $SCALE, $ITERATIONS iterations, $TEST_SAMPLES test samples."
  echo
  [[ -d "$OUT/suite" ]] && echo "- \`suite/report.html\`: tables 4 (bytes), 6 and 7, one JSON per run."
  if [[ -f "$OUT/table4-gpu-ranks.txt" ]]; then
    echo "- \`table4-gpu-ranks.json\`: Table 4's exchanges measured on the ranks:"
    echo
    echo '```'
    cat "$OUT/table4-gpu-ranks.txt"
    echo '```'
  fi
} >"$OUT/README.md"
echo "wrote $OUT/README.md"
