// The tail every example server shares: announce the bound address, run the
// loop until SIGINT or SIGTERM, then close every channel and exit.

import { type Address, close_all, loop } from "@asyncore/asyncore";

/**
 * Prints `listening on HOST:PORT`, serves until a signal (or until `stop`
 * resolves: a pool's process stops when its supervisor is gone), then
 * exits 0.
 */
export async function serveUntilSignal(
  address: Address,
  stop?: Promise<void>,
): Promise<never> {
  const where = typeof address === "string"
    ? address
    : `${address[0]}:${address[1]}`;
  console.log(`listening on ${where}`);
  const stopping = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stopping.abort());
  }
  stop?.then(() => stopping.abort());
  // Only I/O and the signal end a wait here: with no timeout, no timer stays
  // pending while the loop sleeps, and each wake-up costs less.
  await loop({ signal: stopping.signal, timeout: null });
  close_all();
  Deno.exit(0);
}
