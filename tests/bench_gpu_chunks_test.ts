/**
 * `timeChunks` (bench:gpu's and bench:input's chunk loop) with a refill: every chunk trains on
 * the data its refill wrote, each refill waits until the chunk that last used its buffer was
 * recorded, and with three buffers the fill of chunk k + 2 starts as chunk k is recorded (the
 * training loop's lookahead), so a slow fill still has a whole chunk's time. A stand-in engine
 * records what it was given; no GPU is needed.
 */
import assert from "node:assert/strict";
import { deviceGaps, timeChunks } from "../cli/bench_gpu.ts";
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import type { Engine, TrainChunkResult } from "../engine/engine.ts";
import { allocatePhaseSamples } from "../engine/phases.ts";
import { kaggleSpec } from "../engine/spec.ts";

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const buffers of [2, 3]) {
  Deno.test(`timeChunks with ${buffers} buffers: each chunk trains on its own refill, in order`, async () => {
    const spec = kaggleSpec(0.0001);
    const chunks = Array.from({ length: buffers }, () => allocateOneHotChunk(spec, 4, 8, true));
    const trained: number[] = [];
    const events: string[] = [];
    const engine = {
      trainChunk(chunk: BatchChunk): Promise<TrainChunkResult> {
        // The GPU engine copies a chunk's input when it records it: so does this one.
        trained.push(chunk.labels[0]);
        events.push(`record ${chunk.labels[0]}`);
        return delay(5).then(() =>
          ({
            iterations: 2,
            loss: new Float32Array(2),
            phases: allocatePhaseSamples(2),
            wallMs: 5,
          }) as unknown as TrainChunkResult
        );
      },
    } as unknown as Engine;
    const count = 7;
    await timeChunks(engine, chunks, count, async (chunk, k) => {
      events.push(`fill ${k}`);
      await delay(3);
      chunk.labels[0] = k;
    });
    assert.deepEqual(trained, Array.from({ length: count }, (_, k) => k));
    for (let k = buffers; k < count; k++) {
      // Chunk k's buffer held chunk k - buffers, which must be recorded before it is refilled.
      assert.ok(
        events.indexOf(`record ${k - buffers}`) < events.indexOf(`fill ${k}`),
        `fill ${k} before chunk ${k - buffers} was recorded: ${events.join(", ")}`,
      );
      // The fill starts as chunk k - (buffers - 1) is recorded, before any later chunk.
      assert.ok(
        events.indexOf(`fill ${k}`) < events.indexOf(`record ${k - buffers + 2}`),
        `fill ${k} started late: ${events.join(", ")}`,
      );
    }
  });
}

Deno.test("deviceGaps: idle between chunks' device-clock spans and untimed time within them", () => {
  const chunk = (start: number, end: number, timed: number[]): TrainChunkResult => {
    const phases = allocatePhaseSamples(timed.length);
    timed.forEach((ms, i) => (phases.forward[i] = ms));
    return {
      iterations: timed.length,
      loss: new Float32Array(timed.length),
      phases,
      wallMs: 0,
      deviceClockMs: { start, end },
    };
  };
  const gaps = deviceGaps([chunk(100, 110, [4, 5]), chunk(112, 130, [8, 9]), chunk(131, 140, [9])]);
  assert.ok(gaps);
  assert.ok(Math.abs(gaps.idleBetweenMs - 3) < 1e-9, `idle ${gaps.idleBetweenMs}`);
  assert.ok(Math.abs(gaps.untimedWithinMs - 2) < 1e-9, `untimed ${gaps.untimedWithinMs}`);
  const untimed = { ...chunk(0, 1, [1]), deviceClockMs: undefined };
  assert.equal(deviceGaps([chunk(0, 1, [1]), untimed]), null, "a chunk without a span: none");
  assert.equal(deviceGaps([]), null);
});
