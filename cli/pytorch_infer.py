#!/usr/bin/env python3
"""PyTorch DLRM FP32 inference benchmark: the baseline for `deno task infer`'s samples/s.

Scores random, pre-generated one-hot batches with the DLRM of pytorch_dlrm.py (same
architecture, dot interaction, sigmoid output) under torch.inference_mode and prints one JSON
line to stdout:

  {"framework": "pytorch", "torch": ..., "threads": ..., "batch": ..., "samples": ...,
   "samplesPerSecond": {"median", "best"}, "tableRows": [...], "arch": ...}

Each round scores every pre-generated batch once, after --warmup batches scored untimed;
samplesPerSecond is over rounds. Everything else (progress, warnings) goes to stderr.

  python3 cli/pytorch_infer.py kaggle --batch-size 128 --samples 131072 --threads 2
"""

import argparse
import json
import statistics
import sys
import time

try:
    import torch
except ImportError as err:
    print(f"pytorch_infer: torch is not importable from {sys.executable}: {err}", file=sys.stderr)
    sys.exit(2)

# next to this script
from pytorch_dlrm import ARCHS, DLRM, add_model_args, check_arch, table_rows, warn_if_slow_blas


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_model_args(p)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--samples", type=int, default=131072, help="samples scored per round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds")
    p.add_argument("--warmup", type=int, default=8, help="batches scored untimed first")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if min(a.batch_size, a.samples, a.rounds, a.threads) < 1 or min(a.max_rows, a.warmup) < 0:
        p.error("--batch-size, --samples, --rounds and --threads must be >= 1;"
                " --max-rows and --warmup >= 0")

    arch = ARCHS[a.suite]
    rows = table_rows(arch, a)
    # A wrong table count would otherwise fail deep in the forward pass, as a shape mismatch.
    check_arch(p, a.suite, arch, rows)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    warn_if_slow_blas()
    model = DLRM(arch["dim"], arch["bottom"], arch["top"], rows).eval()

    # Pre-generate every batch so the timed loop holds only the forward pass.
    B = a.batch_size
    offsets = torch.arange(B)  # one index per bag
    batches = [
        (
            torch.log1p(torch.randint(0, 1000, (min(B, a.samples - s), arch["bottom"][0])).float()),
            [torch.randint(0, r, (min(B, a.samples - s),)) for r in rows],
        )
        for s in range(0, a.samples, B)
    ]
    rates = []
    with torch.inference_mode():
        for dense, idx in batches[: a.warmup]:
            model(dense, idx, offsets[: dense.shape[0]])
        for _ in range(a.rounds):
            start = time.perf_counter()
            for dense, idx in batches:
                model(dense, idx, offsets[: dense.shape[0]])
            rates.append(a.samples / (time.perf_counter() - start))
    print(json.dumps({
        "framework": "pytorch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": B,
        "samples": a.samples,
        "rounds": a.rounds,
        "samplesPerSecond": {"median": round(statistics.median(rates), 1),
                             "best": round(max(rates), 1)},
        "tableRows": rows,
        "arch": a.suite,
    }))


if __name__ == "__main__":
    main()
