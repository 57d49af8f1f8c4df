/**
 * The deployable model file: integer embedding tables and MLP weights packed at their bit width
 * (INT4 two values a byte, INT2 four, INT8 one, INT16 two bytes), per-table and per-row FP32
 * scales, FP32 biases, and a JSON header with the architecture, the bits and a CRC-32 of the
 * whole file (header and payload). A quantization-aware-trained model scores the same probabilities after a round trip
 * through this file: every stored level times its scale is the fake-quantized value it trained
 * with.
 *
 * Layout: `"DQRM"`, u32 format version, u32 header bytes, the header (UTF-8 JSON), zero padding
 * to 8 bytes, then the sections the header lists, each 8-byte aligned. The header's `crc32` is
 * the CRC-32 of every byte of the file with its own 8 hex digits read as `00000000`, so an edit
 * to the header (its bits, its shapes) fails the check as an edit to the payload does. Version 1
 * files (CRC of the payload only) are still read, with a warning that their header is unchecked.
 *
 * @module
 */
import { type LinearParams, type Params } from "./params.ts";
import { levels, maxAbs, quantizeLevel, scaleOf } from "./quant.ts";
import { type ModelSpec, validateSpec } from "./spec.ts";

/** Version of the model file format. */
export const MODEL_FILE_VERSION = 2;

/** The last version whose CRC covers only the payload (still read, with a warning). */
const PAYLOAD_CRC_VERSION = 1;

const MAGIC = "DQRM";

/** How a model file stores each part: bits, or null for FP32. */
export interface ModelFileQuantization {
  embeddingBits: 2 | 4 | 8 | 16 | null;
  mlpBits: 2 | 4 | 8 | 16 | null;
  mlpGranularity: "channel" | "matrix";
  /** Biases stored as their fake-quantized values (QAT with quantized biases); still FP32. */
  quantizeBias?: boolean;
}

/** One stored tensor. */
interface Section {
  name: string;
  /** "int" (packed levels), "f32" (raw) */
  kind: "int" | "f32";
  bits: number;
  count: number;
  offset: number;
  bytes: number;
}

/** The parsed header of a model file. */
export interface ModelFileHeader {
  format: "dqrm-model";
  version: number;
  spec: ModelSpec;
  quantization: ModelFileQuantization;
  sections: Section[];
  /**
   * CRC-32, 8 hex digits: of the whole file with these digits read as `00000000` (version 2);
   * of everything after the header padding (version 1).
   */
  crc32: string;
  payloadBytes: number;
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function packedBytes(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

/** The sections of a model, in file order, with offsets relative to the payload start. */
function planSections(spec: ModelSpec, q: ModelFileQuantization): Section[] {
  const sections: Section[] = [];
  let offset = 0;
  const add = (name: string, kind: "int" | "f32", bits: number, count: number) => {
    const bytes = kind === "f32" ? count * 4 : packedBytes(count, bits);
    sections.push({ name, kind, bits, count, offset, bytes });
    offset = align8(offset + bytes);
  };
  spec.tableRows.forEach((rows, t) => {
    const n = rows * spec.embeddingDim;
    if (q.embeddingBits === null) add(`embeddings.${t}`, "f32", 32, n);
    else {
      add(`embeddings.${t}.scale`, "f32", 32, 1);
      add(`embeddings.${t}`, "int", q.embeddingBits, n);
    }
  });
  for (const [part, widths] of [["bottom", spec.bottomMlp], ["top", spec.topMlp]] as const) {
    for (let l = 1; l < widths.length; l++) {
      const n = widths[l - 1] * widths[l];
      const name = `${part}.${l - 1}`;
      if (q.mlpBits === null) add(`${name}.weight`, "f32", 32, n);
      else {
        add(`${name}.scales`, "f32", 32, q.mlpGranularity === "channel" ? widths[l] : 1);
        add(`${name}.weight`, "int", q.mlpBits, n);
      }
      add(`${name}.bias`, "f32", 32, widths[l]);
    }
  }
  return sections;
}

function headerBytes(spec: ModelSpec, q: ModelFileQuantization, crc: number): Uint8Array {
  const sections = planSections(spec, q);
  const last = sections[sections.length - 1];
  const header: ModelFileHeader = {
    format: "dqrm-model",
    version: MODEL_FILE_VERSION,
    spec,
    quantization: q,
    sections,
    // Fixed width, so the header's length does not depend on the checksum.
    crc32: hex8(crc),
    payloadBytes: last.offset + last.bytes,
  };
  return new TextEncoder().encode(JSON.stringify(header));
}

/** The exact size in bytes of the model file of `spec` stored as `q`. */
export function modelFileSize(spec: ModelSpec, q: ModelFileQuantization): number {
  const header = headerBytes(spec, q, 0);
  const sections = planSections(spec, q);
  const last = sections[sections.length - 1];
  return align8(12 + header.length) + last.offset + last.bytes;
}

/** Packs signed levels into `bits`-wide two's-complement fields, low bits first. */
function pack(levelsOf: (i: number) => number, count: number, bits: number, out: Uint8Array) {
  if (bits === 8) {
    for (let i = 0; i < count; i++) out[i] = levelsOf(i) & 0xff;
  } else if (bits === 16) {
    for (let i = 0; i < count; i++) {
      const v = levelsOf(i) & 0xffff;
      out[2 * i] = v & 0xff;
      out[2 * i + 1] = v >>> 8;
    }
  } else {
    const perByte = 8 / bits, mask = (1 << bits) - 1;
    out.fill(0, 0, packedBytes(count, bits));
    for (let i = 0; i < count; i++) {
      out[Math.floor(i / perByte)] |= (levelsOf(i) & mask) << ((i % perByte) * bits);
    }
  }
}

/** Reads back `count` signed levels packed by {@linkcode pack}. */
function unpack(bytes: Uint8Array, count: number, bits: number, out: Int32Array | Float32Array) {
  if (bits === 8) {
    for (let i = 0; i < count; i++) out[i] = (bytes[i] << 24) >> 24;
  } else if (bits === 16) {
    for (let i = 0; i < count; i++) out[i] = ((bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16) >> 16;
  } else {
    const perByte = 8 / bits, shift = 32 - bits, mask = (1 << bits) - 1;
    for (let i = 0; i < count; i++) {
      const v = (bytes[Math.floor(i / perByte)] >> ((i % perByte) * bits)) & mask;
      out[i] = (v << shift) >> shift;
    }
  }
}

/**
 * Serialises a model. `tableScales` are the per-table scales the embeddings trained with (their
 * levels are computed with them); MLP scales are computed from the weights, as QAT's forward
 * pass does. Throws a `RangeError` naming a tensor whose size does not match the spec.
 */
export function writeModelFile(
  spec: ModelSpec,
  params: Params,
  q: ModelFileQuantization,
  tableScales?: ArrayLike<number>,
): Uint8Array {
  spec = validateSpec(spec);
  const sections = planSections(spec, q);
  const last = sections[sections.length - 1];
  const payload = new Uint8Array(last.offset + last.bytes);
  const view = new DataView(payload.buffer);
  const byName = new Map(sections.map((s) => [s.name, s]));
  const putF32 = (name: string, values: ArrayLike<number>) => {
    const s = byName.get(name)!;
    if (values.length !== s.count) {
      throw new RangeError(`Expected ${s.count} values for ${name} but found ${values.length}`);
    }
    for (let i = 0; i < s.count; i++) view.setFloat32(s.offset + 4 * i, values[i], true);
  };
  const putInt = (name: string, bits: number, levelOf: (i: number) => number) => {
    const s = byName.get(name)!;
    pack(levelOf, s.count, bits, payload.subarray(s.offset, s.offset + s.bytes));
  };
  params.embeddings.forEach((table, t) => {
    const bits = q.embeddingBits;
    if (bits === null) return putF32(`embeddings.${t}`, table);
    const s = tableScales?.[t] || scaleOf(maxAbs(table), bits);
    const n = levels(bits);
    putF32(`embeddings.${t}.scale`, [s]);
    if (table.length !== byName.get(`embeddings.${t}`)!.count) {
      throw new RangeError(
        `Expected table ${t} to hold ${
          byName.get(`embeddings.${t}`)!.count
        } values but found ${table.length}`,
      );
    }
    putInt(`embeddings.${t}`, bits, (i) => quantizeLevel(table[i], s, n));
  });
  const layers = (part: "bottom" | "top", list: LinearParams[]) =>
    list.forEach((layer, l) => {
      const name = `${part}.${l}`;
      const bits = q.mlpBits;
      let bias: ArrayLike<number> = layer.bias;
      if (bits === null) putF32(`${name}.weight`, layer.weight);
      else {
        const scales = mlpScales(layer, bits, q.mlpGranularity);
        const cols = layer.weight.length / layer.bias.length;
        const n = levels(bits);
        putF32(`${name}.scales`, scales);
        putInt(
          `${name}.weight`,
          bits,
          (i) =>
            quantizeLevel(
              layer.weight[i],
              scales[scales.length === 1 ? 0 : Math.floor(i / cols)],
              n,
            ),
        );
        if (q.quantizeBias) {
          bias = layer.bias.map((b, r) => {
            const sr = scales[scales.length === 1 ? 0 : r];
            return quantizeLevel(b, sr, n) * sr;
          });
        }
      }
      putF32(`${name}.bias`, bias);
    });
  layers("bottom", params.bottom);
  layers("top", params.top);
  // The CRC is taken with its own digits zero (the header's length does not depend on them),
  // then written in.
  const header = headerBytes(spec, q, 0);
  const start = align8(12 + header.length);
  const file = new Uint8Array(start + payload.length);
  file.set(new TextEncoder().encode(MAGIC), 0);
  const fv = new DataView(file.buffer);
  fv.setUint32(4, MODEL_FILE_VERSION, true);
  fv.setUint32(8, header.length, true);
  file.set(header, 12);
  file.set(payload, start);
  const at = crcDigitsAt(file, 12, 12 + header.length)!;
  file.set(new TextEncoder().encode(hex8(crc32(file))), at);
  return file;
}

/** Per-row (or one per-matrix) scales of a layer, as QAT's forward pass computes them. */
function mlpScales(
  layer: LinearParams,
  bits: number,
  granularity: "channel" | "matrix",
): Float32Array {
  const rows = layer.bias.length, cols = layer.weight.length / rows;
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    scales[r] = scaleOf(maxAbs(layer.weight.subarray(r * cols, (r + 1) * cols)), bits);
  }
  if (granularity === "channel") return scales;
  return Float32Array.of(scales.reduce((a, b) => Math.max(a, b), 0));
}

/** A loaded model: the header and the dequantized parameters (level times scale, float32). */
export interface LoadedModel {
  header: ModelFileHeader;
  params: Params;
  /** What the reader could not check (a version 1 file's header), one line each. */
  warnings: string[];
}

const CRC_KEY = new TextEncoder().encode('"crc32":"');

function hex8(crc: number): string {
  return crc.toString(16).padStart(8, "0");
}

/** Offset of the 8 hex digits of the header's last `"crc32":"…"` field in `[from, to)`. */
function crcDigitsAt(file: Uint8Array, from: number, to: number): number | undefined {
  outer: for (let i = to - CRC_KEY.length - 9; i >= from; i--) {
    for (let k = 0; k < CRC_KEY.length; k++) if (file[i + k] !== CRC_KEY[k]) continue outer;
    return i + CRC_KEY.length;
  }
  return undefined;
}

/** A verified model file: its header, spec, warnings and readers of its sections. */
interface OpenedModelFile {
  header: ModelFileHeader;
  spec: ModelSpec;
  warnings: string[];
  /** A section's entry in the header; throws a `SyntaxError` when the file has none. */
  section(name: string): Section;
  /** A section's bytes (a view into the file, nothing copied). */
  bytes(name: string): Uint8Array;
  /** An FP32 section's values (copied out). */
  f32(name: string): Float32Array;
}

/** Checks magic, version, header, size and checksum; throws a one-line `SyntaxError`. */
function openModelFile(file: Uint8Array): OpenedModelFile {
  // Copies of the few bytes decoded as text: TextDecoder refuses views of a SharedArrayBuffer.
  if (file.length < 12 || new TextDecoder().decode(file.slice(0, 4)) !== MAGIC) {
    throw new SyntaxError(`Expected a model file starting with "${MAGIC}" but found other bytes`);
  }
  const fv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const version = fv.getUint32(4, true);
  if (version !== MODEL_FILE_VERSION && version !== PAYLOAD_CRC_VERSION) {
    throw new SyntaxError(
      `Expected model file version ${PAYLOAD_CRC_VERSION} or ${MODEL_FILE_VERSION} but found ${version}`,
    );
  }
  const headerLength = fv.getUint32(8, true);
  if (12 + headerLength > file.length) {
    throw new SyntaxError(
      `Expected a ${headerLength}-byte header but the file has ${file.length} bytes`,
    );
  }
  let header: ModelFileHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(file.slice(12, 12 + headerLength)));
  } catch (e) {
    throw new SyntaxError(`Expected a JSON model file header but found: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || header.format !== "dqrm-model") {
    throw new SyntaxError(`Expected a model file header with format "dqrm-model" but found none`);
  }
  const start = align8(12 + headerLength);
  const payload = file.subarray(start);
  if (payload.length !== header.payloadBytes) {
    throw new SyntaxError(
      `Expected ${header.payloadBytes} payload bytes but found ${payload.length} (truncated file?)`,
    );
  }
  const warnings: string[] = [];
  let crc: string;
  if (version === PAYLOAD_CRC_VERSION) {
    crc = hex8(crc32(payload));
    warnings.push(
      `model file version ${version}: its checksum covers the payload only, so the header ` +
        `(architecture, bits, shapes) is unchecked; save it again to get version ${MODEL_FILE_VERSION}`,
    );
  } else {
    const at = crcDigitsAt(file, 12, 12 + headerLength);
    if (at === undefined) {
      throw new SyntaxError(`Expected a "crc32" field in the model file header but found none`);
    }
    let c = crcUpdate(0xffffffff, file.subarray(0, at));
    c = crcUpdate(c, new TextEncoder().encode("00000000"));
    crc = hex8((crcUpdate(c, file.subarray(at + 8)) ^ 0xffffffff) >>> 0);
  }
  if (crc !== header.crc32) {
    throw new SyntaxError(
      `Model file checksum mismatch: header says ${header.crc32}, ${
        version === PAYLOAD_CRC_VERSION ? "payload" : "header and payload"
      } have ${crc}`,
    );
  }
  const spec = validateSpec(header.spec);
  const byName = new Map(header.sections.map((s) => [s.name, s]));
  const section = (name: string) => {
    const s = byName.get(name);
    if (!s) throw new SyntaxError(`Expected a section "${name}" in the model file but found none`);
    return s;
  };
  const pv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return {
    header,
    spec,
    warnings,
    section,
    bytes: (name) => {
      const s = section(name);
      return payload.subarray(s.offset, s.offset + s.bytes);
    },
    f32: (name) => {
      const s = section(name);
      const out = new Float32Array(s.count);
      for (let i = 0; i < s.count; i++) out[i] = pv.getFloat32(s.offset + 4 * i, true);
      return out;
    },
  };
}

/** The MLPs of an opened model file, dequantized (level times scale, float32). */
function readMlps(opened: OpenedModelFile): Pick<Params, "bottom" | "top"> {
  const { spec, header } = opened;
  const q = header.quantization;
  const layers = (part: "bottom" | "top", widths: number[]) =>
    widths.slice(1).map((outputs, l) => {
      const name = `${part}.${l}`;
      const cols = widths[l];
      let weight: Float32Array;
      if (q.mlpBits === null) weight = opened.f32(`${name}.weight`);
      else {
        const scales = opened.f32(`${name}.scales`);
        weight = dequantizeSection(opened, `${name}.weight`, (i) =>
          scales[scales.length === 1 ? 0 : Math.floor(i / cols)]);
      }
      const bias = opened.f32(`${name}.bias`);
      if (bias.length !== outputs) {
        throw new SyntaxError(`Expected ${outputs} biases in ${name}`);
      }
      return { weight, bias };
    });
  return { bottom: layers("bottom", spec.bottomMlp), top: layers("top", spec.topMlp) };
}

/** An integer section's values times their scales, each rounded to float32. */
function dequantizeSection(
  opened: OpenedModelFile,
  name: string,
  scaleOf: (i: number) => number,
): Float32Array {
  const s = opened.section(name);
  const out = new Float32Array(s.count);
  unpack(opened.bytes(name), s.count, s.bits, out);
  for (let i = 0; i < s.count; i++) out[i] = Math.fround(out[i] * scaleOf(i));
  return out;
}

/**
 * Parses and verifies a model file, returning dequantized parameters. Throws a `SyntaxError`
 * naming what is wrong (magic, version, header, truncation, checksum) in one line. A version 1
 * file (its CRC covers the payload only) is read with a warning in `warnings`.
 */
export function readModelFile(file: Uint8Array): LoadedModel {
  return loadModel(openModelFile(file));
}

/** The dequantized parameters of an opened (verified) model file. */
function loadModel(opened: OpenedModelFile): LoadedModel {
  const { header, spec, warnings } = opened;
  const q = header.quantization;
  const embeddings = spec.tableRows.map((_, t) => {
    if (q.embeddingBits === null) return opened.f32(`embeddings.${t}`);
    const s = opened.f32(`embeddings.${t}.scale`)[0];
    return dequantizeSection(opened, `embeddings.${t}`, () => s);
  });
  return { header, warnings, params: { embeddings, ...readMlps(opened) } };
}

/**
 * Integer embedding tables as the model file stores them: table `t`'s value `i` (row-major,
 * `embeddingDim` a row) is the `bits`-wide two's-complement field at bit `i * bits` of
 * `codes[t]`, low bits first; its value is `fround(level * scales[t])`.
 */
export interface PackedEmbeddings {
  bits: 2 | 4 | 8 | 16;
  /** Each table's packed levels: views into the model file's bytes. */
  codes: Uint8Array[];
  /** Per-table scales. */
  scales: Float32Array;
}

/** A model whose embedding tables stay packed (see {@linkcode readModelFilePacked}). */
export interface LoadedPackedModel {
  header: ModelFileHeader;
  /** The MLPs, dequantized as {@linkcode readModelFile} does. */
  mlps: Pick<Params, "bottom" | "top">;
  /** The packed tables, or null when the file stores FP32 tables. */
  embeddings: PackedEmbeddings | null;
  warnings: string[];
}

/**
 * {@linkcode readModelFile} without expanding the embedding tables: they stay views into
 * `file`'s bytes (keep `file` alive and unchanged; read it into a `SharedArrayBuffer` to share
 * the views with Workers). Verifies the file as {@linkcode readModelFile} does.
 */
export function readModelFilePacked(file: Uint8Array): LoadedPackedModel {
  return loadPackedModel(openModelFile(file));
}

/**
 * {@linkcode readModelFilePacked} where the file stores integer tables (its `embeddings` then
 * not null), else {@linkcode readModelFile}: FP32 tables have nothing to keep packed. The file
 * is verified once, where trying the packed reader first and then the other would do it twice.
 */
export function readModelFilePackedIfInteger(
  file: Uint8Array,
): LoadedPackedModel | LoadedModel {
  const opened = openModelFile(file);
  return opened.header.quantization.embeddingBits === null
    ? loadModel(opened)
    : loadPackedModel(opened);
}

/** The MLPs and the packed integer tables (or null) of an opened (verified) model file. */
function loadPackedModel(opened: OpenedModelFile): LoadedPackedModel {
  const { header, spec, warnings } = opened;
  const bits = header.quantization.embeddingBits;
  const embeddings = bits === null ? null : {
    bits,
    codes: spec.tableRows.map((_, t) => opened.bytes(`embeddings.${t}`)),
    scales: Float32Array.from(
      spec.tableRows.map((_, t) => opened.f32(`embeddings.${t}.scale`)[0]),
    ),
  };
  return { header, warnings, mlps: readMlps(opened), embeddings };
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib computes it). */
export function crc32(bytes: Uint8Array): number {
  return (crcUpdate(0xffffffff, bytes) ^ 0xffffffff) >>> 0;
}

/** Runs the CRC-32 register `c` over `bytes`. */
function crcUpdate(c: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return c;
}
