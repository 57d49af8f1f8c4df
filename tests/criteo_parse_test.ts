import assert from "node:assert/strict";
import {
  BAD_LINE_KINDS,
  describeBadLine,
  FIELDS,
  halve,
  IdDictionary,
  keepsNegative,
  MAX_LINE_BYTES,
  parseBlock,
  type ParsedColumns,
  parsedColumnsBytes,
  parsedColumnsView,
  partLines,
  samplesCapacity,
} from "../data/criteo/mod.ts";
import { Rng } from "../engine/rng.ts";
import { goodLine, referenceParse, text, tsvLine } from "./criteo_helpers.ts";

const SETTINGS = { maxIndRange: 0, subsampleRate: 0, seed: 1, source: 0, offset: 0 };

function columns(bytes: Uint8Array): ParsedColumns {
  const capacity = Math.max(1, samplesCapacity(bytes.length));
  return parsedColumnsView(new ArrayBuffer(parsedColumnsBytes(capacity)), capacity);
}

function parse(bytes: Uint8Array, settings = SETTINGS) {
  const out = columns(bytes);
  return { out, result: parseBlock(bytes, 0, bytes.length, out, settings) };
}

Deno.test("parseBlock() reads labels, log(x + 1) integers (missing and negative as 0) and hex values", () => {
  const lines = [
    tsvLine(1, [0, 1, 2, "", -5, 4095, 4096, 123456789, 2147483647, "007", "", "", 3], [
      "5ab5a3c1",
      "",
      "0",
      "FFFFFFFF",
      ...Array(22).fill("a"),
    ]),
    goodLine(7),
  ];
  const { out, result } = parse(text(lines));
  assert.equal(result.samples, 2);
  assert.equal(result.lines, 2);
  assert.deepEqual(result.badCounts, BAD_LINE_KINDS.map(() => 0));
  const ref = referenceParse(lines.join("\n"));
  for (let s = 0; s < 2; s++) {
    assert.equal(out.labels[s], ref[s].label);
    assert.equal(out.lines[s], s);
    assert.deepEqual(Array.from(out.dense.subarray(s * 13, s * 13 + 13)), ref[s].dense);
    for (let t = 0; t < 26; t++) {
      assert.equal(out.categorical[t * out.capacity + s], ref[s].cats[t]);
    }
  }
  assert.equal(out.dense[4], 0, "a negative integer becomes 0");
  assert.equal(out.dense[6], Math.fround(Math.log(4097)));
  assert.equal(out.categorical[0], 0x5ab5a3c1);
  assert.equal(out.categorical[out.capacity], 0, "a missing categorical is 0");
  assert.equal(out.categorical[3 * out.capacity], 0xffffffff, "upper-case hex is read");
});

Deno.test("parseBlock() takes categoricals modulo the max-ind-range", () => {
  const line = tsvLine(0, Array(13).fill(1), Array.from({ length: 26 }, (_, t) => 0xffffff00 + t));
  const { out } = parse(text([line]), { ...SETTINGS, maxIndRange: 1000 });
  for (let t = 0; t < 26; t++) {
    assert.equal(out.categorical[t * out.capacity], (0xffffff00 + t) % 1000);
  }
});

Deno.test("describeBadLine() classifies every kind a line can have, first problem first", () => {
  const good = goodLine(3);
  const fields = good.split("\t");
  const withField = (i: number, v: string) => fields.map((f, j) => (j === i ? v : f)).join("\t");
  const cases: [string, string | undefined][] = [
    [good, undefined],
    ["", "empty"],
    [good + "\r", undefined], // CR LF line end
    ["\r", "empty"],
    [good + "\r\r", "carriageReturn"],
    [fields.slice(0, 20).join("\t") + "\r" + fields.slice(20).join("\t"), "carriageReturn"],
    ["x".repeat(MAX_LINE_BYTES), "lineLength"],
    [fields.slice(0, 39).join("\t"), "fields"],
    [good + "\t", "fields"],
    ["\r\r", "carriageReturn"],
    [withField(0, "2"), "label"],
    [withField(0, ""), "label"],
    [withField(3, "1.5"), "integer"],
    [withField(3, "+1"), "integer"],
    [withField(3, "-"), "integer"],
    [withField(3, "2147483648"), "integer"],
    [withField(3, "-2147483648"), undefined],
    [withField(20, "zz"), "hexadecimal"],
    [withField(20, "12 4"), "hexadecimal"],
    [withField(20, "123456789"), "categoricalLength"],
    [withField(0, "7").split("\t").map((f, j) => (j === 20 ? "zz" : f)).join("\t"), "label"],
  ];
  for (const [line, kind] of cases) {
    const got = describeBadLine(new TextEncoder().encode(line));
    assert.equal(got?.kind, kind, `${JSON.stringify(line.slice(0, 40))}: ${got?.what}`);
    // The fast parser agrees.
    const { result } = parse(text([line]));
    assert.equal(result.samples, kind === undefined ? 1 : 0);
    if (kind) assert.equal(result.badCounts[BAD_LINE_KINDS.indexOf(kind as never)], 1);
  }
  assert.match(
    describeBadLine(new TextEncoder().encode(withField(20, "zz")))!.what,
    /field 21 \(C7\) but found "zz"/,
  );
  assert.match(
    describeBadLine(new TextEncoder().encode("a\tb"))!.what,
    /Expected 40 tab-separated fields but found 2/,
  );
});

Deno.test("parseBlock() and describeBadLine() agree on thousands of mutated lines", () => {
  const rng = new Rng(7, 1);
  const alphabet = "0123456789abcdefABCDEF-+ .\t\r\nxz";
  for (let i = 0; i < 5000; i++) {
    const chars = [...goodLine(i)];
    const edits = 1 + rng.int(3);
    for (let e = 0; e < edits; e++) {
      const at = rng.int(chars.length);
      const c = alphabet[rng.int(alphabet.length)];
      const op = rng.int(3);
      if (op === 0) chars[at] = c;
      else if (op === 1) chars.splice(at, 0, c);
      else chars.splice(at, 1);
    }
    const line = chars.join("").replaceAll("\n", "");
    const bytes = new TextEncoder().encode(line);
    const bad = describeBadLine(bytes);
    const { result } = parse(text([line]));
    assert.equal(result.samples, bad ? 0 : 1, JSON.stringify(line));
    if (bad) assert.equal(result.firstBad?.kind, bad.kind);
  }
});

Deno.test("parseBlock() counts bad lines by kind with their first 0-based lines", () => {
  const lines = [goodLine(1), "", goodLine(2), "1\t2", "", goodLine(3) + "\r\r", "", goodLine(4)];
  const { result } = parse(text(lines));
  assert.equal(result.samples, 3);
  assert.equal(result.lines, 8);
  const k = (kind: string) => BAD_LINE_KINDS.indexOf(kind as never);
  assert.equal(result.badCounts[k("empty")], 3);
  assert.deepEqual(result.badLines[k("empty")], [1, 4, 6]);
  assert.deepEqual(result.badLines[k("fields")], [3]);
  assert.deepEqual(result.badLines[k("carriageReturn")], [5]);
  assert.deepEqual(result.firstBad, {
    line: 1,
    kind: "empty",
    what: "Expected 40 fields but found an empty line",
  });
});

Deno.test("sub-sampling drops about the rate of negatives, keeps every positive, and is seeded", () => {
  const lines = Array.from({ length: 4000 }, (_, i) => goodLine(i));
  const bytes = text(lines);
  const { out, result } = parse(bytes, { ...SETTINGS, subsampleRate: 0.875 });
  const positives = lines.filter((l) => l[0] === "1").length;
  let kept = 0;
  for (let s = 0; s < result.samples; s++) kept += out.labels[s];
  assert.equal(kept, positives, "every positive is kept");
  const negatives = lines.length - positives;
  assert.ok(
    Math.abs(result.subsampled / negatives - 0.875) < 0.03,
    `${result.subsampled} of ${negatives}`,
  );
  assert.equal(result.samples + result.subsampled, lines.length);
  // The decision is a function of (seed, source, offset) only.
  assert.equal(keepsNegative(1, 0, 12345, 0.5), keepsNegative(1, 0, 12345, 0.5));
  const other = parse(bytes, { ...SETTINGS, subsampleRate: 0.875, seed: 2 }).result;
  assert.notEqual(other.subsampled, result.subsampled);
});

Deno.test("samplesCapacity() bounds the good lines a block can hold", () => {
  const shortest = "0" + "\t".repeat(FIELDS - 1);
  const bytes = text(Array(100).fill(shortest));
  assert.equal(samplesCapacity(bytes.length), 100);
  assert.equal(parse(bytes).result.samples, 100);
});

Deno.test("IdDictionary numbers values by first appearance, counts, grows and restores", () => {
  const dict = new IdDictionary(true);
  const values = Uint32Array.from(
    { length: 50000 },
    (_, i) => (Math.imul(i % 3001, 0x9e3779b1) >>> 0),
  );
  values[7] = 0;
  const column = values.slice();
  dict.mapInPlace(column, column.length);
  const expected = new Map<number, number>();
  values.forEach((v, i) => {
    if (!expected.has(v)) expected.set(v, expected.size);
    assert.equal(column[i], expected.get(v));
  });
  assert.equal(dict.size, expected.size);
  assert.equal(dict.get(values[7]), expected.get(0));
  assert.equal(dict.get(123), expected.has(123) ? expected.get(123) : -1);
  assert.equal(dict.counts!.reduce((a, b) => a + b, 0), values.length);
  const copy = new IdDictionary(true);
  copy.restore(dict.values, dict.counts!.slice());
  assert.deepEqual(Array.from(copy.values), Array.from(dict.values));
  assert.equal(copy.get(values[100]), dict.get(values[100]));
});

Deno.test("partLines() and halve() follow DLRM's divmod and array_split", () => {
  assert.deepEqual(partLines(45_840_617), [
    6548660,
    6548660,
    6548660,
    6548660,
    6548659,
    6548659,
    6548659,
  ]);
  assert.deepEqual(halve(6_548_659), { test: 3_274_330, validation: 3_274_329 });
  assert.deepEqual(partLines(10_000), [1429, 1429, 1429, 1429, 1428, 1428, 1428]);
});
