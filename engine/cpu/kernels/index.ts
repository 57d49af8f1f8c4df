// Entry of the CPU engine's WebAssembly module: one kernel per file.
export { linearForward } from "./linear_forward";
export { gemmBroadcast } from "./gemm_broadcast";
export { columnSum } from "./column_sum";
export { sgd } from "./sgd";
export { interactBackward, interactForward } from "./interaction";
export { rowMaxAbs, fakeQuantizeRows, fakeQuantizeTerms, sgdQuantizeRows } from "./quantize";
export { maxAbsFlat, fakeQuantizeFlat } from "./table";
export { lsqRows, lsqInitRows } from "./lsq";
export { dorefaRows } from "./dorefa";
export { pactForward, pactBackward } from "./pact";
export { biasActivate, maskRows } from "./epilogue";
