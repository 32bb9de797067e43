// The tail every example server shares: announce the bound address, run the
// loop until SIGINT or SIGTERM, then close every channel and exit.

import { type Address, close_all, loop } from "@asyncore/asyncore";

/** Prints `listening on HOST:PORT`, serves until a signal, then exits 0. */
export async function serveUntilSignal(address: Address): Promise<never> {
  const where = typeof address === "string"
    ? address
    : `${address[0]}:${address[1]}`;
  console.log(`listening on ${where}`);
  const stop = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stop.abort());
  }
  await loop({ signal: stop.signal });
  close_all();
  Deno.exit(0);
}
