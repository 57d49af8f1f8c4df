/**
 * Run by `cpu_blas_test.ts` in a process of its own (the test runner's other modules would add
 * their CPU time to this one's): opens the default BLAS library with the `OMP_NUM_THREADS` it
 * inherited, times eight 1536³ products and prints its description, the process's CPU seconds
 * and the wall seconds they took, as JSON.
 *
 * @module
 */
import { NO_TRANS, openDefaultBlas, ROW_MAJOR, TRANS } from "../engine/cpu/blas_library.ts";
import { viewAddress } from "../engine/cpu/blas.ts";

/** This process's user + system CPU seconds (/proc/self/stat, in clock ticks of 1/100 s). */
function cpuSeconds(): number {
  const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const blas = openDefaultBlas();
const n = 1536;
const a = new Float32Array(n * n).fill(0.5), c = new Float32Array(n * n);
const product = () =>
  blas.sgemm(
    ROW_MAJOR,
    NO_TRANS,
    TRANS,
    n,
    n,
    n,
    1,
    viewAddress(a),
    n,
    viewAddress(a),
    n,
    0,
    viewAddress(c),
    n,
  );
product();
const cpu0 = cpuSeconds(), wall0 = performance.now();
for (let i = 0; i < 8; i++) product();
const wall = (performance.now() - wall0) / 1000, cpu = cpuSeconds() - cpu0;
console.log(JSON.stringify({ description: blas.description, value: c[0], cpu, wall }));
blas.close();
