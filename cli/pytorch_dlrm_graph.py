"""The DLRM training step of pytorch_dlrm.py as one CUDA graph: the strongest lean PyTorch peer.

run_cudagraph() builds the same model (DLRM init, dot interaction without self-interaction) as
plain tensors on the GPU: the 26 tables concatenated into one (rows x d) tensor with a row offset
per table, the MLP weights and biases as leaf tensors. One training step, captured whole:

  gather   rows = table.index_select(0, idx + offset), one index per bag (= embedding bag sum)
  forward  bottom MLP (ReLU on every layer), dot interaction, top MLP (no final sigmoid), loss
           binary_cross_entropy_with_logits (mean)
  backward torch.autograd.grad w.r.t. the gathered rows and the MLP parameters: no dense table
           gradient, nothing accumulated into .grad
  update   plain SGD: torch._foreach_add_(params, grads, alpha=-lr) and
           table.index_add_(0, idx + offset, row_grads, alpha=-lr) (atomic, non-deterministic)

With int4 (DQRM INT4, as pytorch_dlrm.py's Int4Qat and design/reference-study.md section 2): the
gathered rows are fake-quantized with one symmetric scale per table, s = max|table| / 7, read from
a static tensor that a second small CUDA graph refreshes every `period` steps outside the main one
(one max-abs reduction per table); the MLP weights are fake-quantized per output row every step
inside the graph (s_o = max|W_o| / 7, biases unquantized as our engine's dqrm() config); the
quantizer is clamp(round(x / s), -8, 7) * s with the identity straight-through gradient.

Every batch (dense features, per-table indices, label, packed as int32 [B, 13 + 26 + 1]) is
generated on the GPU before timing; each timed step copies the next one into the graph's static
input (one device copy), replays the scale graph when due, then replays the step graph. Timing is
by torch.cuda.Event around each step, in a loop that never synchronizes.
"""

import math
import sys

import torch
import torch.nn.functional as F


class QuantSte(torch.autograd.Function):
    """Symmetric fake quantization clamp(round(x / s), -(n+1), n) * s; identity gradient to x."""

    @staticmethod
    def forward(ctx, x, s, n):
        return torch.div(x, s).round_().clamp_(-n - 1.0, n).mul_(s)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None


def _mlp_params(widths, dev, gen):
    """[W0, b0, W1, b1, ...] with DLRM's init, as leaf tensors that require grad."""
    params = []
    for n, m in zip(widths[:-1], widths[1:]):
        w = torch.empty(m, n, device=dev).normal_(0.0, math.sqrt(2.0 / (n + m)), generator=gen)
        b = torch.empty(m, device=dev).normal_(0.0, math.sqrt(1.0 / m), generator=gen)
        params += [w.requires_grad_(), b.requires_grad_()]
    return params


def _batches(n, batch, dense_width, rows, dev, gen):
    """n batches as int32 [n, batch, dense + tables + 1]: log1p dense floats' bits, each table's
    index (one per bag), the 0/1 label's float bits."""
    tables = len(rows)
    raw = torch.empty(n, batch, dense_width + tables + 1, dtype=torch.int32, device=dev)
    dense = torch.randint(0, 1000, (n, batch, dense_width), device=dev, generator=gen)
    raw[:, :, :dense_width] = torch.log1p(dense.float()).view(torch.int32)
    for t, r in enumerate(rows):
        raw[:, :, dense_width + t] = torch.randint(
            0, r, (n, batch), device=dev, dtype=torch.int32, generator=gen)
    label = torch.bernoulli(torch.full((n, batch), 0.25, device=dev), generator=gen)
    raw[:, :, dense_width + tables] = label.view(torch.int32)
    return raw


class GraphStep:
    """The model's tensors at static addresses, the captured step graph and the scale graph."""

    def __init__(self, arch, rows, batch, int4, period, lr, seed, dev, n_batches):
        d, bottom, top = arch["dim"], arch["bottom"], arch["top"]
        self.rows, self.batch, self.int4, self.period, self.lr = rows, batch, int4, period, lr
        self.d, self.tables, self.dense_width = d, len(rows), bottom[0]
        self.f = self.tables + 1
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)
        self.n_levels = 7.0  # INT4: [-8, 7]

        self.starts = [0]
        for r in rows:
            self.starts.append(self.starts[-1] + r)
        self.table = torch.empty(self.starts[-1], d, device=dev)
        for t, r in enumerate(rows):
            bound = math.sqrt(1.0 / r)
            self.table_rows(t).uniform_(-bound, bound, generator=gen)
        self.base = torch.tensor(self.starts[:-1], dtype=torch.int64, device=dev)
        self.bot_params = _mlp_params(bottom, dev, gen)
        self.top_params = _mlp_params(top, dev, gen)
        self.params = self.bot_params + self.top_params
        # Strict lower triangle (i > j) of the f x f dot products, row-major, as flat indices.
        f = self.f
        self.tri = torch.tensor([i * f + j for i in range(f) for j in range(i)], device=dev)
        self.scales = torch.ones(self.tables, device=dev)  # per-table row scales (int4)

        self.data = _batches(n_batches, batch, self.dense_width, rows, dev, gen)
        # Static input: the graph reads views of this buffer; each step copies a batch into it.
        self.static = self.data[0].clone()
        self.graph = self.scale_graph = self.loss = None

    def table_rows(self, t):
        """Table t's rows: a view of the concatenated table."""
        return self.table[self.starts[t]:self.starts[t + 1]]

    def inputs(self, raw):
        """(dense float [B, 13], indices int32 [B, 26], labels float [B]): views of a batch."""
        w, t = self.dense_width, self.tables
        return raw[:, :w].view(torch.float32), raw[:, w:w + t], raw[:, w + t].view(torch.float32)

    def _linear(self, x, w, b):
        if self.int4:
            s = torch.linalg.vector_norm(w.detach(), ord=math.inf, dim=1, keepdim=True)
            w = QuantSte.apply(w, s.clamp_min_(1e-8).div_(self.n_levels), self.n_levels)
        return F.linear(x, w, b)

    def step(self):
        """One training step on the static input; returns the loss (detached)."""
        B, T, d, f = self.batch, self.tables, self.d, self.f
        dense, idx, label = self.inputs(self.static)
        flat = torch.add(idx, self.base).reshape(-1)  # int32 + int64 -> int64 global rows
        gathered = self.table.index_select(0, flat).view(B, T, d).detach().requires_grad_()
        ly = gathered
        if self.int4:
            ly = QuantSte.apply(gathered, self.scales.view(1, T, 1), self.n_levels)
        x, bot, top = dense, self.bot_params, self.top_params
        for k in range(0, len(bot), 2):
            x = torch.relu(self._linear(x, bot[k], bot[k + 1]))
        t = torch.cat([x.unsqueeze(1), ly], dim=1)  # B x f x d
        z = torch.bmm(t, t.transpose(1, 2)).view(B, f * f)
        h = torch.cat([x, z.index_select(1, self.tri)], dim=1)
        for k in range(0, len(top), 2):
            h = self._linear(h, top[k], top[k + 1])
            if k + 2 < len(top):
                h = torch.relu(h)
        loss = F.binary_cross_entropy_with_logits(h.view(-1), label)
        grads = torch.autograd.grad(loss, [gathered] + self.params)
        with torch.no_grad():
            torch._foreach_add_(self.params, list(grads[1:]), alpha=-self.lr)
            self.table.index_add_(0, flat, grads[0].reshape(-1, d), alpha=-self.lr)
        return loss.detach()

    def refresh_scales(self):
        """Per-table scale max|table| / 7 into the static scale tensor."""
        with torch.no_grad():
            amax = torch.stack([
                torch.linalg.vector_norm(self.table_rows(t), ord=math.inf)
                for t in range(self.tables)
            ])
            self.scales.copy_(amax.clamp_min_(1e-8).div_(self.n_levels))

    def capture(self):
        """Warms up on a side stream (3 steps that train), then captures both graphs."""
        if self.int4:
            self.refresh_scales()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                if self.int4:
                    self.refresh_scales()
                self.step()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss = self.step()
        if self.int4:
            self.scale_graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.scale_graph):
                self.refresh_scales()

    def replay(self, k):
        """Step k: batch k into the static input, the scales when k % period == 0, the step."""
        self.static.copy_(self.data[k], non_blocking=True)
        if self.scale_graph is not None and k % self.period == 0:
            self.scale_graph.replay()
        self.graph.replay()


def run_cudagraph(arch, rows, batch, iterations, warmup, int4, period, lr, seed, dev):
    """Captures and times the training step; returns (per-step ms list, final loss)."""
    g = GraphStep(arch, rows, batch, int4, period, lr, seed, dev, warmup + iterations)
    print(f"cudagraph: {g.starts[-1]} rows in one table, {warmup + iterations} batches of {batch}"
          " on the GPU", file=sys.stderr)
    g.capture()
    for k in range(warmup):
        g.replay(k)
    events = [torch.cuda.Event(enable_timing=True) for _ in range(iterations + 1)]
    torch.cuda.synchronize()
    events[0].record()
    for i in range(iterations):
        g.replay(warmup + i)
        events[i + 1].record()
    torch.cuda.synchronize()
    times = [events[i].elapsed_time(events[i + 1]) for i in range(iterations)]
    return times, g.loss.item()
