#!/usr/bin/env bash
# The GPU-at-scale figures in one device call: each step under its own time limit (a step that
# runs out leaves what it wrote), every output into one folder and one .tgz (the device machine
# returns few files). Run from the repository root on the GPU machine, after
# `source .carry/gpu-env.sh` (and `source ci/blas-env.sh` for the CPU inference step):
#
#   ci/gpu_measure.sh OUT [STEP...]
#
# Steps (default: kaggle terabyte kernels methods):
#   kaggle    bench:gpu kaggle, every batch size, FP32 and DQRM, against PyTorch (eager, CUDA graph)
#   terabyte  the same for the Terabyte model (b2048 and b16384, 4M samples)
#   kernels   bench_gpu_kernels at b128, b2048 and b16384: each product's plan, rolled and the
#             small-product kernel's variants, TFLOP/s and % of the FMA peak
#   methods   bench:gpu kaggle at b128 for every QAT method, against its memory-traffic floor
#             (2M samples: 16,000 iterations, so the run's start is amortized as in the others)
#   profile   profile:gpu kaggle at b128 and b2048 (each kernel in a timed pass of its own)
#   infer     bench:infer on two distinct CPU cores (taskset) against PyTorch on the CPU
#   dp        bench:gpu-dp with 2 ranks on GPU 0 (Table 4's exchanges, time by part)
#   cpu-tb    bench:cpu terabyte, full tables, batch 2048, 2 threads on two distinct cores, our
#             BLAS path against PyTorch on the same cores
#   qat       bench:qat on two distinct cores, BLAS path: DQRM / FP32 and scale finding vs a copy
#   blas      bench:blas on one core: each BLAS library's GEMM at the engine's products
#   probe     probe:gpu-chunks kaggle at b16384: each chunk boundary's submits and maps (host
#             time) beside the device's idle time; probe-tb the same for Terabyte at b2048
# Settings (environment): LIMIT (seconds a step may take, default 360: terabyte ran past 280 once each
# batch size and method warmed up first, 0.5 s then, 1 s now), PYTHON (default python3),
# DQRM_COMMIT (the commit written to machine.txt; default git rev-parse HEAD, which names a stale
# commit where the tree was copied without its current .git).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: ci/gpu_measure.sh OUT [STEP...]}"
shift
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(kaggle terabyte kernels methods)
LIMIT="${LIMIT:-360}"
PY="${PYTHON:-python3}"
R=(deno run --no-lock --cached-only -A --v8-flags=--expose-gc)
mkdir -p "$OUT"
{ nvidia-smi -L 2>&1; deno --version | head -1; echo "${DQRM_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"; } \
  >"$OUT/machine.txt"
# Two cores with no SMT sibling between them: cpu0 and the first cpu outside cpu0's siblings.
second_core() {
  local sib c
  sib=$(cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list 2>/dev/null || echo 0)
  for c in $(seq 1 "$(($(nproc) - 1))"); do
    case ",$sib," in *",$c,"*) ;; *) echo "$c"; return ;; esac
  done
  echo 1
}
for step in "${STEPS[@]}"; do
  log="$OUT/$step.txt"
  case "$step" in
  kaggle) cmd=("${R[@]}" cli/bench_gpu.ts kaggle --samples 4000000 --methods fp32,dqrm --pytorch "$PY" --out "$OUT/$step.json") ;;
  terabyte) cmd=("${R[@]}" cli/bench_gpu.ts terabyte --batch-size 2048,16384 --samples 4000000 --methods fp32,dqrm --pytorch "$PY" --out "$OUT/$step.json") ;;
  kernels) cmd=("${R[@]}" cli/bench_gpu_kernels.ts --batch-size 128,2048,16384 --skip-update --out "$OUT/$step.json") ;;
  methods) cmd=("${R[@]}" cli/bench_gpu.ts kaggle --batch-size 128 --samples 2000000 --methods fp32,dqrm,dqrm-p1,hawq,pact,lsq --out "$OUT/$step.json") ;;
  profile) cmd=("${R[@]}" cli/profile_gpu.ts kaggle --batch-size 128,2048 --methods fp32 --reps 5 --top 30 --out "$OUT/$step.json") ;;
  infer) cmd=(taskset -c "0,$(second_core)" "${R[@]}" cli/bench_infer.ts --threads 1,2 --rounds 3 --python "$PY" --out "$OUT/$step.json") ;;
  cpu-tb) cmd=(taskset -c "0,$(second_core)" "${R[@]}" cli/bench_cpu.ts terabyte --batch-size 2048 --max-rows 0 --iterations 10 --rounds 2 --threads 2 --cpu-kernels blas --python "$PY" --out "$OUT/$step.json") ;;
  qat) cmd=(taskset -c "0,$(second_core)" "${R[@]}" cli/bench_qat.ts --threads 2 --cpu-kernels blas --iterations 200 --rounds 3) ;;
  blas) cmd=(taskset -c 0 "${R[@]}" cli/bench_blas.ts --out "$OUT/$step.json") ;;
  dp) cmd=("${R[@]}" cli/bench_gpu_dp.ts --ranks 2 --out "$OUT/$step.json") ;;
  probe) cmd=("${R[@]}" cli/probe_gpu_chunks.ts kaggle --batch-size 16384 --out "$OUT/$step.json") ;;
  probe-tb) cmd=("${R[@]}" cli/probe_gpu_chunks.ts terabyte --batch-size 2048 --out "$OUT/$step.json") ;;
  *)
    echo "gpu_measure: unknown step '$step' (expected kaggle, terabyte, kernels, methods, profile, infer, dp, cpu-tb, qat, blas, probe or probe-tb)" >&2
    exit 2
    ;;
  esac
  echo "== $step: ${cmd[*]}" | tee "$log"
  start=$(date +%s)
  timeout "$LIMIT" "${cmd[@]}" >>"$log" 2>&1
  rc=$?
  echo "== $step: exit $rc after $(($(date +%s) - start)) s" | tee -a "$log"
done
tar czf "$OUT.tgz" -C "$(dirname "$OUT")" "$(basename "$OUT")"
echo "gpu_measure: $OUT.tgz"
