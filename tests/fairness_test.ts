// Fair service: with FREE_READS or more reads in flight, the loop starts at
// most ADMIT_PER_TURN new reads per turn, in FIFO order, so connections served
// a moment ago wait behind the others instead of forming a hot set (see
// _waker.ts). Throughput and fairness under
// load are measured by `deno task bench`; these tests pin the mechanism.

import assert from "node:assert/strict";
import { close_all, Dispatcher, loop } from "../mod.ts";
import { ADMIT_PER_TURN, FREE_READS, type Queued, Waker } from "../_waker.ts";
import { bytes, closing, loopbackPair, loopUntil, text } from "./_helpers.ts";

// Arms the way a channel does: only when the waker admits it.
class Item implements Queued {
  queued = false;
  admitQueued = false;
  constructor(
    readonly name: number,
    readonly waker: Waker<Item>,
    readonly started: number[],
  ) {}
  armRead(): void {
    if (this.waker.admit(this)) this.started.push(this.name);
  }
}

Deno.test("Waker with FREE_READS reads in flight admits ADMIT_PER_TURN reads a turn and starts the rest FIFO on later turns", () => {
  const waker = new Waker<Item>();
  waker.inFlight = FREE_READS;
  const started: number[] = [];
  const items = Array.from(
    { length: ADMIT_PER_TURN * 2 + 5 },
    (_, i) => new Item(i, waker, started),
  );
  for (const item of items) item.armRead();
  assert.equal(started.length, ADMIT_PER_TURN);
  assert.ok(waker.holding);
  // Asking again while queued does not queue twice.
  assert.equal(waker.admit(items.at(-1)!), false);

  waker.turn();
  assert.deepEqual(
    started.slice(ADMIT_PER_TURN),
    items.slice(ADMIT_PER_TURN, ADMIT_PER_TURN * 2).map((item) => item.name),
  );
  waker.turn();
  assert.equal(started.length, items.length);
  assert.equal(started.at(-1), items.at(-1)!.name);
  assert.equal(waker.holding, false);
});

Deno.test("Waker admits every read while fewer than FREE_READS are in flight", () => {
  const waker = new Waker<Item>();
  const started: number[] = [];
  for (let i = 0; i < FREE_READS; i++) {
    new Item(i, waker, started).armRead();
    waker.inFlight++;
  }
  assert.equal(started.length, FREE_READS);
  assert.equal(waker.holding, false);
  // At the bound, admission takes over.
  for (let i = 0; i <= ADMIT_PER_TURN; i++) {
    new Item(FREE_READS + i, waker, started).armRead();
  }
  assert.equal(started.length, FREE_READS + ADMIT_PER_TURN);
  assert.ok(waker.holding);
});

Deno.test("Waker keeps admitting in turn when its queue never runs empty", () => {
  // Each admitted read completes and asks again at once, as 1000 busy
  // connections do: the queue stays full across compactions of its array.
  const waker = new Waker<Item>();
  waker.inFlight = FREE_READS;
  const started: number[] = [];
  const items = Array.from(
    { length: 1000 },
    (_, i) => new Item(i, waker, started),
  );
  for (const item of items) item.armRead();
  let checked = 0;
  for (let turn = 0; turn < 2000; turn++) {
    waker.turn();
    for (const name of started.slice(checked)) items[name]!.armRead();
    checked = started.length;
  }
  assert.equal(started.length, ADMIT_PER_TURN * 2001);
  // Round robin: every read waited for all the others before its next one.
  for (let i = items.length; i < started.length; i++) {
    assert.equal(started[i], started[i - items.length]);
  }
  assert.ok(waker.holding);
});

// Reads what arrives, and never asks to write.
class Reader extends Dispatcher {
  received = "";
  override writable(): boolean {
    return false;
  }
  override handle_read(): void {
    this.received += text(this.recv(16));
  }
}

interface Readers extends Disposable {
  readers: Reader[];
  peers: Deno.Conn[];
}

// `count` Readers on loopback connections, and their peers (which disposing
// closes; close_all() closes the readers).
async function openReaders(count: number): Promise<Readers> {
  const group: Readers = {
    readers: [],
    peers: [],
    [Symbol.dispose]() {
      for (const peer of this.peers) peer.close();
    },
  };
  try {
    for (let i = 0; i < count; i++) {
      const [conn, peer] = await loopbackPair();
      group.peers.push(peer);
      group.readers.push(new Reader(conn));
    }
  } catch (error) {
    group[Symbol.dispose]();
    throw error;
  }
  return group;
}

Deno.test("reads held for admission start without waiting out the pass timeout", async () => {
  using _cleanup = closing();
  // The channels that join first get the first reads and stay quiet; only
  // the last ones, whose reads wait for admission, receive anything.
  using group = await openReaders(FREE_READS + ADMIT_PER_TURN * 2);
  const talking = group.readers.slice(-ADMIT_PER_TURN);
  for (const peer of group.peers.slice(-ADMIT_PER_TURN)) {
    await peer.write(bytes("x"));
  }
  // Every pass may wait 30 s: only reads that were started can end a wait.
  await loopUntil(() => talking.every((r) => r.received === "x"), {
    timeout: 30,
    limit: 10,
    what: "every connection was read",
  });
});

Deno.test("after close_all() a loop on the same map starts its reads at once, whatever the last one held", async () => {
  using _cleanup = closing();
  // One pass over quiet connections leaves reads held for admission...
  const held = await openReaders(FREE_READS + ADMIT_PER_TURN * 2 + 8);
  await loop({ timeout: 0, count: 1 });
  held[Symbol.dispose]();
  close_all();
  // ...which must not hold back the reads of the channels that come next.
  using group = await openReaders(FREE_READS);
  for (const peer of group.peers) await peer.write(bytes("x"));
  await loop({ timeout: 30, count: 1 });
  const served = group.readers.filter((r) => r.received === "x").length;
  assert.ok(served > 0, `the first pass served none of ${FREE_READS}`);
});

Deno.test("a pass that finds nothing ready while reads wait for admission reports the reads that land", async () => {
  using _cleanup = closing();
  // More connections than start at once, each with a byte waiting: the first
  // pass starts FREE_READS + ADMIT_PER_TURN reads and holds the rest, finds
  // nothing ready yet, and lets the started reads land before it reports.
  const count = FREE_READS + ADMIT_PER_TURN + 8;
  using group = await openReaders(count);
  for (const peer of group.peers) await peer.write(bytes("x"));
  await loop({ timeout: 30, count: 1 });
  const served = group.readers.filter((r) => r.received === "x").length;
  assert.ok(
    served >= FREE_READS,
    `the first pass served ${served} of ${count} connections`,
  );
});

Deno.test("while reads wait for admission a pass takes more turns, and reports what each lands", async () => {
  using _cleanup = closing();
  // Every connection has a byte waiting. The scan starts FREE_READS +
  // ADMIT_PER_TURN reads; each later turn admits ADMIT_PER_TURN more.
  const count = FREE_READS + ADMIT_PER_TURN * 4 + 8;
  using group = await openReaders(count);
  for (const peer of group.peers) await peer.write(bytes("x"));
  await loop({ timeout: 30, count: 1 });
  const served = group.readers.filter((r) => r.received === "x").length;
  assert.ok(
    served >= FREE_READS + ADMIT_PER_TURN * 3,
    `one pass served ${served} of ${count} connections`,
  );
});

// Answers each byte with one, and notes a second dispatch between two
// readable() calls: two in one pass.
class Ponger extends Dispatcher {
  passes = 0;
  readIn = -1;
  reads = 0;
  twice = 0;
  override readable(): boolean {
    this.passes++;
    return true;
  }
  override writable(): boolean {
    return false;
  }
  override handle_read(): void {
    if (this.readIn === this.passes) this.twice++;
    this.readIn = this.passes;
    this.reads += this.recv(16).length;
    this.send(bytes("y"));
  }
}

Deno.test("a pass of several turns dispatches each channel once, however often its reads land", async () => {
  using _cleanup = closing();
  // Peers that answer at once: a connection served in one turn is admitted
  // again in the next while admissions are left over, and lands again.
  const count = FREE_READS + ADMIT_PER_TURN + 8;
  const pongers: Ponger[] = [];
  const peers: Deno.Conn[] = [];
  using _peers = {
    [Symbol.dispose]() {
      for (const peer of peers) peer.close();
    },
  };
  for (let i = 0; i < count; i++) {
    const [conn, peer] = await loopbackPair();
    peers.push(peer);
    pongers.push(new Ponger(conn));
  }
  const rounds = 5;
  const pinging = peers.map(async (peer) => {
    const reply = new Uint8Array(1);
    for (let i = 0; i < rounds; i++) {
      await peer.write(bytes("x"));
      if (await peer.read(reply) === null) return;
    }
  });
  await loopUntil(() => pongers.every((p) => p.reads === rounds), {
    timeout: 30,
    what: "every ping was answered",
  });
  await Promise.all(pinging);
  const twice = pongers.reduce((sum, p) => sum + p.twice, 0);
  assert.equal(twice, 0, `${twice} dispatches came twice in one pass`);
});
