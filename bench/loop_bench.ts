/**
 * What one loop pass costs as idle channels pile up: `poll()` asks every
 * channel's `readable()`/`writable()` on each pass (as Python does), so the
 * difference between the two benchmarks, divided by the channel count, is the
 * per-channel cost of a pass.
 *
 *     deno bench -A bench/loop_bench.ts
 *
 * The idle channels are real loopback connections: both ends of each pair are
 * dispatchers, so 10,000 channels take 10,000 descriptors. Where the open-file
 * limit is lower, it uses as many as the limit allows (at least 2,000).
 *
 * @module
 */

import {
  close_all,
  Dispatcher,
  poll,
  type SocketMap,
} from "@asyncore/asyncore";
import { connectedPairs, fileLimit } from "./_pairs.ts";

const WANTED = 10_000;
const MINIMUM = 2_000;
// Descriptors left for Deno itself, the listener and the write-ready pair.
const SPARE = 64;

/** Waits for data that never comes: an idle connection. */
class Idle extends Dispatcher {
  override writable(): boolean {
    return false;
  }
}

/** Always write-ready, so a pass never waits on the timer. */
class Ticker extends Dispatcher {
  override handle_write(): void {}
}

function channelCount(): number {
  const limit = fileLimit();
  const count = Math.min(WANTED, limit - SPARE) & ~1;
  if (count < MINIMUM) {
    throw new RangeError(
      `Cannot set up the benchmark: the open-file limit "${limit}" allows fewer than ${MINIMUM} channels (raise it with ulimit -n)`,
    );
  }
  return count;
}

async function build(idle: number): Promise<SocketMap> {
  const map: SocketMap = new Map();
  const pairs = await connectedPairs(1 + idle / 2);
  const [tick, peer] = pairs.pop()!;
  new Ticker(tick, map);
  new Idle(peer, map);
  for (const [a, b] of pairs) {
    new Idle(a, map);
    new Idle(b, map);
  }
  // The first pass starts every channel's read.
  await poll(0, map);
  return map;
}

const idle = channelCount();
const small = await build(0);
const large = await build(idle);
// deno bench has no teardown hook: close every channel when the module ends.
globalThis.addEventListener("unload", () => {
  close_all(small);
  close_all(large);
});

Deno.bench({
  name: "poll() pass, 2 channels",
  group: "poll pass",
  baseline: true,
  async fn() {
    await poll(0, small);
  },
});

Deno.bench({
  name: `poll() pass, 2 + ${idle.toLocaleString("en-US")} idle channels`,
  group: "poll pass",
  async fn() {
    await poll(0, large);
  },
});
