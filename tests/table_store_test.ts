import assert from "node:assert/strict";
import { MAX_MEMORY_BYTES, planTables } from "../engine/cpu/table_store.ts";
import { kaggleSpec, terabyteSpec } from "../engine/spec.ts";

Deno.test("planTables() packs the Terabyte tables into 4 GiB memories without overlap", () => {
  const spec = terabyteSpec();
  const plan = planTables(spec.tableRows.map((r) => r * spec.embeddingDim), false);
  assert.equal(plan.pages.length, 5); // five tables of 2.3-2.6 GB: no two share a memory
  for (const pages of plan.pages) assert.ok(pages * 65536 <= MAX_MEMORY_BYTES);
  for (let m = 0; m < plan.pages.length; m++) {
    const slots = plan.slots.filter((s) => s.memory === m).sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < slots.length; i++) {
      assert.ok(slots[i - 1].offset + slots[i - 1].length * 4 <= slots[i].offset);
    }
    assert.ok(slots.every((s) => s.offset % 16 === 0 && s.copyOffset === -1));
  }
});

Deno.test("planTables() puts each HAWQ copy beside its table in the same memory", () => {
  const spec = kaggleSpec();
  const plan = planTables(spec.tableRows.map((r) => r * spec.embeddingDim), true);
  assert.equal(plan.pages.length, 2); // 2 x 2.16 GB does not fit one 4 GiB memory
  for (const s of plan.slots) assert.ok(s.copyOffset >= s.offset + s.length * 4);
});

Deno.test("planTables() rejects a table larger than one memory", () => {
  assert.throws(
    () => planTables([2 ** 30 + 1], false),
    /Expected every table to fit one 4 GiB memory/,
  );
});
