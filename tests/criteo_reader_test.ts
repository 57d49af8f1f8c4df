import assert from "node:assert/strict";
import { crc32Update, type LineBlock, LineBlockReader } from "../data/criteo/mod.ts";
import { goodLine, gzip, tempDir, text } from "./criteo_helpers.ts";

/** Reads a whole file through a `size`-byte buffer: the blocks and their bytes joined. */
async function readAll(path: string, size: number, maxLines?: number) {
  const reader = await LineBlockReader.open(path, { maxLines });
  const buf = new Uint8Array(size);
  const blocks: LineBlock[] = [];
  const parts: Uint8Array[] = [];
  for (let b; (b = await reader.next(buf)) !== null;) {
    blocks.push(b);
    parts.push(buf.slice(0, b.length));
  }
  await reader.close();
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.length;
  }
  return { reader, blocks, bytes: joined };
}

const LINES = Array.from({ length: 3000 }, (_, i) => goodLine(i));

Deno.test("LineBlockReader hands out whole lines, plain and gzipped alike, with offsets and CRC-32", async () => {
  const dir = await tempDir();
  const plain = text(LINES);
  await Deno.writeFile(`${dir}/plain.tsv`, plain);
  const gz = gzip(plain);
  await Deno.writeFile(`${dir}/data.gz`, gz);
  for (const [file, stored] of [["plain.tsv", plain], ["data.gz", gz]] as const) {
    const { reader, blocks, bytes } = await readAll(`${dir}/${file}`, 4096);
    assert.deepEqual(bytes, plain, file);
    assert.ok(blocks.length > 100);
    let offset = 0;
    for (const b of blocks) {
      assert.equal(b.offset, offset);
      assert.equal(b.lines, undefined, "not counted without a limit");
      assert.deepEqual(b.skipped, []);
      offset += b.length;
    }
    assert.equal(reader.gzip, file === "data.gz");
    assert.equal(reader.textBytes, plain.length);
    assert.equal(reader.hashedBytes, stored.length);
    assert.equal(reader.crc32, crc32Update(stored).toString(16).padStart(8, "0"));
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("LineBlockReader ends an unterminated last line, reads multi-member gzip, stops at a line limit", async () => {
  const dir = await tempDir();
  await Deno.writeFile(`${dir}/a.tsv`, text(LINES.slice(0, 10), true));
  const a = await readAll(`${dir}/a.tsv`, 4096);
  assert.deepEqual(a.bytes, text(LINES.slice(0, 10)));
  assert.equal(a.reader.textBytes, text(LINES.slice(0, 10)).length - 1);

  const first = gzip(text(LINES.slice(0, 1000))), second = gzip(text(LINES.slice(1000)));
  const both = new Uint8Array(first.length + second.length);
  both.set(first);
  both.set(second, first.length);
  await Deno.writeFile(`${dir}/multi.gz`, both);
  assert.deepEqual((await readAll(`${dir}/multi.gz`, 8192)).bytes, text(LINES));

  for (const limit of [1, 77, 2999, 3000, 5000]) {
    const r = await readAll(`${dir}/multi.gz`, 4096, limit);
    const n = Math.min(limit, LINES.length);
    assert.deepEqual(r.bytes, text(LINES.slice(0, n)), `limit ${limit}`);
    assert.equal(r.blocks.reduce((s, b) => s + b.lines!, 0), n);
    assert.equal(r.reader.linesCounted, n);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("LineBlockReader reports a truncated gzip stream and a line longer than a block", async () => {
  const dir = await tempDir();
  const plain = text(LINES);
  const gz = gzip(plain);
  // Cut inside the compressed data: the partial last line is dropped and counted.
  await Deno.writeFile(`${dir}/cut.gz`, gz.subarray(0, gz.length >> 1));
  const cut = await readAll(`${dir}/cut.gz`, 4096);
  const events = cut.blocks.flatMap((b) => b.skipped);
  assert.equal(events.length, 1);
  assert.equal(events[0].kind, "truncatedGzip");
  assert.equal(events[0].counts, true);
  assert.match(events[0].what, /unexpected end of file/);
  assert.ok(cut.bytes.length > 0 && cut.bytes.length < plain.length);
  assert.deepEqual(cut.bytes, plain.subarray(0, cut.bytes.length), "the lines before are intact");
  // Cut in the trailer: every line arrives, the stream is still incomplete.
  await Deno.writeFile(`${dir}/trailer.gz`, gz.subarray(0, gz.length - 4));
  const trailer = await readAll(`${dir}/trailer.gz`, 4096);
  assert.deepEqual(trailer.bytes, plain);
  assert.deepEqual(trailer.blocks.flatMap((b) => b.skipped).map((s) => [s.kind, s.counts]), [[
    "truncatedGzip",
    false,
  ]]);

  const long = [LINES[0], "9".repeat(10000), LINES[1]];
  await Deno.writeFile(`${dir}/long.tsv`, text(long));
  const r = await readAll(`${dir}/long.tsv`, 4096, 3);
  assert.deepEqual(r.bytes, text([LINES[0], LINES[1]]));
  assert.deepEqual(r.blocks.flatMap((b) => b.skipped.map((s) => s.kind)), ["lineLength"]);
  assert.equal(r.blocks.reduce((s, b) => s + b.lines!, 0), 2);
  assert.equal(r.reader.linesCounted, 3);
  await Deno.remove(dir, { recursive: true });
});
