#!/usr/bin/env python3
"""PyTorch DLRM training benchmark: the baseline for the CPU engine's ms/iteration.

Trains the same model as facebookresearch/dlrm's DLRM_Net with dot interaction
(no self-interaction) on random, pre-generated data and prints one JSON line to stdout:

  {"framework": "pytorch", "mode": "eager" | "cudagraph", "torch": ..., "threads": ...,
   "batch": ..., "iters": ..., "msPerIter": {"median", "mean", "p10", "p90"},
   "tableRows": [...], "arch": ...}

Everything else (progress, warnings) goes to stderr.

  python3 cli/pytorch_dlrm.py kaggle --iterations 200 --threads 1
  python3 cli/pytorch_dlrm.py --device cuda --max-rows 0 --batch-size 128 --int4
  python3 cli/pytorch_dlrm.py --device cuda --max-rows 0 --batch-size 128 --mode cudagraph

On CUDA the batches are pre-generated on the GPU and the timed loop is measured between two
synchronizations (mean ms/it, launch-bound as PyTorch is at these sizes). --int4 adds DQRM's
quantization-aware training as a lean PyTorch step would do it: per-channel INT4 fake
quantization of the MLP weights every step, and INT4 fake quantization of the gathered embedding
rows with one scale per table found every --period steps over the whole table (straight-through
gradients).

--mode cudagraph (CUDA only) is the strongest lean PyTorch peer: the whole training step (gather,
MLPs, interaction, BCE-with-logits loss, backward, SGD on the MLPs, index_add_ of the gathered
rows' gradients into one concatenated table, no dense table gradient) is one CUDA graph replayed
after copying the next pre-staged batch into its static input; see pytorch_dlrm_graph.py.
"""

import argparse
import json
import math
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
except ImportError as err:
    print(f"pytorch_dlrm: torch is not importable from {sys.executable}: {err}", file=sys.stderr)
    sys.exit(2)

# Same table sizes as engine/spec.ts (KAGGLE_TABLE_ROWS, TERABYTE_TABLE_ROWS).
ARCHS = {
    "kaggle": dict(
        dim=16,
        bottom=[13, 512, 256, 64, 16],
        top=[367, 512, 256, 1],
        rows=[1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
              27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572],
    ),
    "terabyte": dict(
        dim=64,
        bottom=[13, 512, 256, 64],
        top=[415, 512, 512, 256, 1],
        rows=[9980333, 36084, 17217, 7378, 20134, 3, 7112, 1442, 61, 9758201, 1333352, 313829,
              10, 2208, 11156, 122, 4, 970, 14, 9994222, 7267859, 9946608, 415421, 12420, 101,
              36],
    ),
}


def mlp(widths, sigmoid_last):
    """Linear layers with DLRM init; ReLU after each, except Sigmoid after the last if asked."""
    layers = []
    for i, (n, m) in enumerate(zip(widths[:-1], widths[1:])):
        lin = nn.Linear(n, m)
        with torch.no_grad():
            lin.weight.normal_(0.0, math.sqrt(2.0 / (n + m)))  # W ~ N(0, sqrt(2/(n+m)))
            lin.bias.normal_(0.0, math.sqrt(1.0 / m))  # b ~ N(0, sqrt(1/m))
        last = i == len(widths) - 2
        layers += [lin, nn.Sigmoid() if (last and sigmoid_last) else nn.ReLU()]
    return nn.Sequential(*layers)


class DLRM(nn.Module):
    def __init__(self, dim, bottom, top, rows):
        super().__init__()
        self.bot = mlp(bottom, sigmoid_last=False)  # ReLU on every layer, the last included
        self.top = mlp(top, sigmoid_last=True)
        # Allocate each table uninitialised and fill it in place with U(-sqrt(1/n), sqrt(1/n)),
        # avoiding EmbeddingBag's own N(0, 1) init (slow and wasted for 10M-row tables).
        self.emb = nn.ModuleList()
        for n in rows:
            w = torch.empty(n, dim).uniform_(-math.sqrt(1.0 / n), math.sqrt(1.0 / n))
            self.emb.append(nn.EmbeddingBag(n, dim, mode="sum", sparse=True, _weight=w))
        # Strict lower triangle (i > j) of the 27x27 dot products, row-major: (1,0),(2,0),(2,1),...
        f = len(rows) + 1
        li = [i for i in range(f) for j in range(i)]
        lj = [j for i in range(f) for j in range(i)]
        self.register_buffer("li", torch.tensor(li), persistent=False)
        self.register_buffer("lj", torch.tensor(lj), persistent=False)

    def forward(self, dense, indices, offsets, qat=None):
        if qat is None:
            x = self.bot(dense)  # B x d
            ly = [e(indices[t], offsets) for t, e in enumerate(self.emb)]  # 26 x (B x d)
        else:
            x = qat.mlp(self.bot, dense)
            ly = [qat.rows(e, t, indices[t], offsets) for t, e in enumerate(self.emb)]
        t = torch.stack([x] + ly, dim=1)  # B x 27 x d
        z = torch.bmm(t, t.transpose(1, 2))  # B x 27 x 27
        r = torch.cat([x, z[:, self.li, self.lj]], dim=1)  # B x (d + 351)
        top = self.top(r) if qat is None else qat.mlp(self.top, r)
        return top.squeeze(1)  # B


def fake_quantize(w, scale, n):
    """Symmetric fake quantization with a straight-through gradient."""
    q = torch.clamp(torch.round(w / scale), -n, n) * scale
    return w + (q - w).detach()


class Int4Qat:
    """DQRM INT4: per-channel MLP weights every step; gathered rows with per-table scales."""

    def __init__(self, model, period):
        self.model, self.period, self.step, self.n = model, period, 0, 7.0
        self.scales = None

    def begin_step(self):
        if self.scales is None or self.step % self.period == 0:
            with torch.no_grad():
                self.scales = [e.weight.abs().max().clamp_min(1e-8) / self.n for e in self.model.emb]
        self.step += 1

    def mlp(self, seq, x):
        for layer in seq:
            if isinstance(layer, nn.Linear):
                s = layer.weight.abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / self.n
                x = nn.functional.linear(x, fake_quantize(layer.weight, s.detach(), self.n), layer.bias)
            else:
                x = layer(x)
        return x

    def rows(self, emb, t, idx, offsets):
        w = nn.functional.embedding(idx, emb.weight, sparse=True)  # one index per bag
        return fake_quantize(w, self.scales[t], self.n)


def warn_if_slow_blas():
    """The MLPs are ~90% of the step and run on whatever BLAS torch links. Debian's python3-torch
    uses libblas.so.3, which is netlib's reference BLAS unless OpenBLAS/BLIS is installed; that
    makes this baseline several times slower than a stock PyTorch build. Warn on stderr."""
    a, b = torch.randn(128, 512), torch.randn(512, 512)
    a @ b
    start = time.perf_counter()
    a @ b
    gflops = 2 * 128 * 512 * 512 / (time.perf_counter() - start) / 1e9
    if gflops < 10:
        print(f"warning: fp32 GEMM runs at {gflops:.1f} GFLOP/s; torch may be using reference"
              " BLAS (install OpenBLAS for a fair baseline)", file=sys.stderr)


def add_model_args(p):
    """The architecture and its table rows: SUITE, --table-rows, --max-rows (see table_rows)."""
    p.add_argument("suite", nargs="?", choices=sorted(ARCHS), default="kaggle",
                   help="architecture (default kaggle)")
    p.add_argument("--table-rows", help="comma-separated rows per table (overrides --max-rows)")
    p.add_argument("--max-rows", type=int, default=100000,
                   help="cap each table at N rows; 0 = full size (default 100000)")


def table_rows(arch, a):
    """Rows per table: --table-rows as given, else the architecture's capped at --max-rows."""
    if a.table_rows:
        return [int(s) for s in a.table_rows.split(",")]
    return [min(n, a.max_rows) if a.max_rows else n for n in arch["rows"]]


def check_arch(p, suite, arch, rows):
    """Exits with a usage error (what was expected, what was found) unless the model of `arch`
    with `rows` rows per table is the one `suite` names: its table count, >= 1 row per table,
    a bottom MLP ending at the embedding dim, and a top MLP taking the bottom MLP's output and
    one dot product per pair of the bottom MLP's and the tables' vectors."""
    d, tables = arch["dim"], len(arch["rows"])
    if len(rows) != tables or min(rows, default=0) < 1:
        smallest = f", the smallest of {min(rows)} rows" if rows else ""
        p.error(f"{suite} expects {tables} tables of >= 1 row but found {len(rows)} tables"
                f"{smallest}")
    if arch["bottom"][-1] != d:
        p.error(f"{suite} expects a bottom MLP ending at the embedding dim {d} but found"
                f" {arch['bottom']}")
    f = tables + 1
    top_inputs = d + f * (f - 1) // 2
    if arch["top"][0] != top_inputs:
        p.error(f"{suite} expects a top MLP taking {top_inputs} inputs (dim {d} + the"
                f" {f * (f - 1) // 2} dot products of {f} vectors) but found {arch['top']}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_model_args(p)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--iterations", type=int, default=200, help="timed iterations")
    p.add_argument("--warmup", type=int, default=20, help="untimed iterations first")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--int4", action="store_true", help="DQRM INT4 quantization-aware training")
    p.add_argument("--period", type=int, default=200, help="table scale period with --int4")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (default 0.1)")
    p.add_argument("--mode", choices=["eager", "cudagraph"], default="eager",
                   help="eager (default), or cudagraph: the whole step as one CUDA graph (CUDA)")
    p.add_argument("--verify", type=int, default=0, metavar="N",
                   help="with --mode cudagraph: train N steps eagerly and as the graph from\n"
                        "the same weights and batches, print the largest differences\n"
                        "(exit 1 over 1e-3)")
    a = p.parse_args()
    if a.batch_size < 1 or a.iterations < 1 or a.warmup < 0 or a.threads < 1 or a.max_rows < 0 \
            or a.period < 1:
        p.error("--batch-size, --iterations, --threads and --period must be >= 1;"
                " --warmup and --max-rows >= 0")
    if a.mode == "cudagraph" and not a.device.startswith("cuda"):
        p.error("--mode cudagraph needs --device cuda")
    if a.verify < 0 or (a.verify and a.mode != "cudagraph"):
        p.error("--verify N needs N >= 0 and --mode cudagraph")

    arch = ARCHS[a.suite]
    rows = table_rows(arch, a)
    check_arch(p, a.suite, arch, rows)
    d = arch["dim"]

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("pytorch_dlrm: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        sys.exit(2)
    if not cuda:
        warn_if_slow_blas()
    elif dev.index is not None:
        torch.cuda.set_device(dev)

    if a.verify:
        sys.exit(verify_cudagraph(a, arch, rows, dev))
    if a.mode == "cudagraph":
        from pytorch_dlrm_graph import run_cudagraph  # next to this script

        t0 = time.perf_counter()
        times, loss = run_cudagraph(arch, rows, a.batch_size, a.iterations, a.warmup, a.int4,
                                    a.period, a.lr, a.seed, dev)
        print(f"cudagraph: {time.perf_counter() - t0:.1f}s in all", file=sys.stderr)
        report(a, rows, times, loss, dev)
        return

    t0 = time.perf_counter()
    model = DLRM(d, arch["bottom"], arch["top"], rows).to(dev)
    qat = Int4Qat(model, a.period) if a.int4 else None
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    loss_fn = nn.BCELoss(reduction="mean")
    print(f"init {time.perf_counter() - t0:.1f}s, {sum(rows)} embedding rows", file=sys.stderr)

    # Pre-generate every batch so the timed loop holds only the training step.
    B, n = a.batch_size, a.warmup + a.iterations
    offsets = torch.arange(B, device=dev)  # one index per bag
    batches = [
        (
            torch.log1p(torch.randint(0, 1000, (B, arch["bottom"][0])).float()).to(dev),  # dense
            [torch.randint(0, r, (B,)).to(dev) for r in rows],  # one index per table per sample
            torch.bernoulli(torch.full((B,), 0.25)).to(dev),  # labels
        )
        for _ in range(n)
    ]

    def step(dense, idx, y):
        opt.zero_grad(set_to_none=True)  # drop (sparse) grads instead of zeroing them
        if qat is not None:
            qat.begin_step()
        loss = loss_fn(model(dense, idx, offsets, qat), y)
        loss.backward()
        opt.step()
        return loss

    times = []
    if cuda:
        # Per-step host timing would add a synchronization to every step: time the whole loop.
        for dense, idx, y in batches[: a.warmup]:
            loss = step(dense, idx, y)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for dense, idx, y in batches[a.warmup :]:
            loss = step(dense, idx, y)
        torch.cuda.synchronize()
        times = [(time.perf_counter() - start) * 1e3 / a.iterations] * a.iterations
    else:
        for k, (dense, idx, y) in enumerate(batches):
            start = time.perf_counter()
            loss = step(dense, idx, y)
            if k >= a.warmup:
                times.append((time.perf_counter() - start) * 1e3)

    report(a, rows, times, loss.item(), dev)


def verify_cudagraph(a, arch, rows, dev):
    """Trains a.verify steps with the eager model (DLRM, Int4Qat, sparse SGD) and with the CUDA
    graph from the same weights and batches; prints the largest differences as JSON; returns the
    exit status (1 when one exceeds 1e-3)."""
    from pytorch_dlrm_graph import GraphStep  # next to this script

    g = GraphStep(arch, rows, a.batch_size, a.int4, a.period, a.lr, a.seed, dev, a.verify)
    g.capture()  # its warm-up steps train; the eager model's weights are copied in afterwards
    model = DLRM(arch["dim"], arch["bottom"], arch["top"], rows).to(dev)
    qat = Int4Qat(model, a.period) if a.int4 else None
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    loss_fn = nn.BCELoss(reduction="mean")
    lins = [m for m in list(model.bot) + list(model.top) if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for t, e in enumerate(model.emb):
            g.table_rows(t).copy_(e.weight)
        for k, lin in enumerate(lins):
            g.params[2 * k].copy_(lin.weight)
            g.params[2 * k + 1].copy_(lin.bias)
    offsets = torch.arange(a.batch_size, device=dev)
    loss_diff = 0.0
    for k in range(a.verify):
        dense, idx, label = g.inputs(g.data[k])
        opt.zero_grad(set_to_none=True)
        if qat is not None:
            qat.begin_step()
        indices = [idx[:, t].long() for t in range(len(rows))]
        loss = loss_fn(model(dense.contiguous(), indices, offsets, qat), label.contiguous())
        loss.backward()
        opt.step()
        g.replay(k)
        loss_diff = max(loss_diff, abs(loss.item() - g.loss.item()))
    with torch.no_grad():
        table_diff = max((g.table_rows(t) - e.weight).abs().max().item()
                         for t, e in enumerate(model.emb))
        mlp_diff = max(max((g.params[2 * k] - lin.weight).abs().max().item(),
                           (g.params[2 * k + 1] - lin.bias).abs().max().item())
                       for k, lin in enumerate(lins))
    ok = max(table_diff, mlp_diff, loss_diff) <= 1e-3
    print(json.dumps({"verify": a.verify, "mode": "cudagraph", "int4": a.int4,
                      "batch": a.batch_size, "lastLoss": round(g.loss.item(), 6),
                      "maxTableDiff": table_diff, "maxMlpDiff": mlp_diff,
                      "maxLossDiff": loss_diff, "ok": ok}))
    return 0 if ok else 1


def report(a, rows, times, loss, dev):
    """Prints the final loss to stderr and the result's JSON line to stdout."""
    cuda = dev.type == "cuda"
    q = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else times * 9
    print(f"final loss {loss:.4f}", file=sys.stderr)
    print(json.dumps({
        "framework": "pytorch",
        "mode": a.mode,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "int4": a.int4,
        "batch": a.batch_size,
        "iters": a.iterations,
        "warmup": a.warmup,
        "period": a.period if a.int4 else None,
        "msPerIter": {
            "median": round(statistics.median(times), 4),
            "mean": round(statistics.fmean(times), 4),
            "p10": round(q[0], 4),
            "p90": round(q[8], 4),
        },
        "tableRows": rows,
        "arch": a.suite,
    }))


if __name__ == "__main__":
    main()
