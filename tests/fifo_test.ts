// The FIFO behind the loop's admission queue and asynchat's producer fifo:
// entries leave in order, and its memory follows what it holds. A queue that
// never runs empty (a server under steady load) once kept a slot for every
// entry ever pushed.

import assert from "node:assert/strict";
import { COMPACT_AT, Fifo } from "../_fifo.ts";

Deno.test("Fifo hands entries out first in, first out", () => {
  const fifo = new Fifo<string | null>();
  assert.equal(fifo.shift(), undefined);
  assert.equal(fifo.peek(), undefined);
  fifo.push("a");
  fifo.push(null);
  fifo.push("c");
  assert.equal(fifo.length, 3);
  assert.equal(fifo.peek(), "a");
  fifo.replaceFirst("A");
  assert.deepEqual(fifo.entries(), ["A", null, "c"]);
  assert.equal(fifo.shift(), "A");
  assert.equal(fifo.shift(), null, "null is an entry, not emptiness");
  assert.deepEqual(fifo.entries(), ["c"]);
  assert.equal(fifo.shift(), "c");
  assert.equal(fifo.length, 0);
  assert.equal(fifo.slots, 0, "an emptied queue lets its array go");
  assert.equal(fifo.shift(), undefined);
});

Deno.test("Fifo that never runs empty holds fewer than twice its entries plus COMPACT_AT slots", () => {
  const fifo = new Fifo<number>();
  const held = 900;
  for (let i = 0; i < held; i++) fifo.push(i);
  let next = 0;
  let most = 0;
  // 100,000 entries through a queue that always holds 900, as the loop's
  // admission queue does at 1000 busy connections.
  for (let i = held; i < held + 100_000; i++) {
    fifo.push(i);
    assert.equal(fifo.shift(), next++);
    most = Math.max(most, fifo.slots);
  }
  assert.equal(fifo.length, held);
  assert.ok(
    most < 2 * held + COMPACT_AT,
    `${most} slots for ${held} entries`,
  );
  assert.deepEqual(
    fifo.entries(),
    Array.from({ length: held }, (_, i) => next + i),
  );
  assert.equal(fifo.slots, held, "entries() drops the taken slots");
});
