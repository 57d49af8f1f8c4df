/**
 * Post-training quantization on the GPU: every table fake-quantized in place with its minmax
 * scale, and every MLP matrix through a scratch copy of the packed buffer.
 *
 * @module
 */
import type { QuantConfig } from "../quant.ts";
import { levels } from "../quant.ts";
import type { ScaleKernels } from "./bind_scales.ts";
import { iterationsBindGroup } from "./input.ts";
import { ROW_QUANTIZE_BIAS, rowQuantizeKernel, rowQuantizeSetup } from "./kernels/row_quantize.ts";
import { dispatch } from "./record.ts";
import type { GpuState } from "./state.ts";

/**
 * Encodes the quantization of `config` into `encoder`; returns the temporary buffers to free
 * once it is submitted. Needs an iteration block written (the kernels' group 1 binds one).
 */
export function encodeQuantizeInPlace(
  state: GpuState,
  scaleKernels: ScaleKernels,
  encoder: GPUCommandEncoder,
  config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">,
): GPUBuffer[] {
  const iterations = iterationsBindGroup(state);
  if (config.embeddingBits !== null) {
    const kernels = scaleKernels.forBits(config.embeddingBits);
    const pass = encoder.beginComputePass();
    pass.setBindGroup(1, iterations, [0]);
    const segments = state.plan.segments.length;
    for (const m of kernels.maxAbs) dispatch(pass, m.kernel, m.x, m.y);
    dispatch(pass, kernels.scale, Math.ceil(state.spec.tableRows.length / 64));
    for (const k of kernels.fakeQuantize) dispatch(pass, k, kernels.blocks, segments);
    state.blockMaxima.stale = true;
    pass.end();
  }
  const bits = config.mlpBits;
  if (bits === null) return [];
  const L = state.layout;
  const binder = state.binder;
  // Quantize into a scratch copy of the whole packed buffer, then copy it back.
  const scratch = state.buffers.create("quantize scratch", L.floats * 4);
  encoder.copyBufferToBuffer(state.mlp, 0, scratch, 0, L.floats * 4);
  const pass = encoder.beginComputePass();
  pass.setBindGroup(1, iterations, [0]);
  const temporary: GPUBuffer[] = [scratch];
  binder.collecting(temporary, () => {
    const all = [...L.bottom, ...L.top];
    const setup = rowQuantizeSetup(all, levels(bits), config.quantizeBias ? ROW_QUANTIZE_BIAS : 0);
    const k = binder.bind(rowQuantizeKernel(all.length), [
      binder.uniform("row quantize", setup.words, setup.floats),
      state.mlp,
      scratch,
      state.rowScales,
      state.qat.rowMax,
    ]);
    dispatch(pass, k, ...setup.grid);
  });
  pass.end();
  encoder.copyBufferToBuffer(scratch, 0, state.mlp, 0, L.floats * 4);
  return temporary;
}
