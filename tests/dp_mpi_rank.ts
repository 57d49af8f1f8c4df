// A rank of the MPI communicator test (tests/dp_mpi_test.ts): runs the fixed script of collectives
// over MPI with 256-byte pieces (larger float sums go in pieces) and writes its result to
// `<dir>/rank<r>.json`.
import { MpiCommunicator } from "../comm/mpi/communicator.ts";
import { runCommScript } from "./dp_comm_script.ts";

const comm = MpiCommunicator.create({ pieceBytes: 256 });
const result = runCommScript(comm);
await Deno.writeTextFile(`${Deno.args[0]}/rank${comm.rank}.json`, JSON.stringify(result));
comm.finalize();
