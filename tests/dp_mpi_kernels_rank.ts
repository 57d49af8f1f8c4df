// A rank of `cli/mpi_train.ts` whose BLAS library is missing on rank 1 only (tests/dp_mpi_test.ts):
// with --cpu-kernels auto, rank 0 runs BLAS and rank 1 WebAssembly, which must stop the run.
if (Deno.env.get("OMPI_COMM_WORLD_RANK") === "1") {
  Deno.env.set("DQRM_BLAS_LIB", "/nonexistent/libblas-for-test.so");
}
await import("../cli/mpi_train.ts");
