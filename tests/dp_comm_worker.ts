/// <reference lib="deno.worker" />
// A rank of the communicator tests (tests/dp_comm_test.ts): runs the fixed script of collectives.
import { type SharedGroup, SharedMemoryCommunicator } from "../comm/communicator.ts";
import { runCommScript } from "./dp_comm_script.ts";

self.onmessage = (e: MessageEvent<{ group: SharedGroup; rank: number }>) => {
  self.postMessage(runCommScript(new SharedMemoryCommunicator(e.data.group, e.data.rank)));
};
