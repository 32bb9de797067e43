// Tests of timers.ts and the timers a dispatcher owns (call_later(),
// call_every(), timeout): order, cancellation, error routing, close_all(),
// the wait bound, and inactivity timeouts over real connections.

import assert from "node:assert/strict";
import {
  call_every,
  call_later,
  close_all,
  Dispatcher,
  ExitNow,
  loop,
  socket_map,
  type SocketMap,
} from "../mod.ts";
import { kChannel } from "../_channel.ts";
import { bytes, closing, loopbackPair, loopUntil } from "./_helpers.ts";

// Runs loop({ map }) (passes of up to `timeout` seconds) until it returns,
// or `done()` holds when given; fails if a 10 s guard has to stop it. Returns
// the number of passes. loopUntil() stops when the map empties, but timers
// alone keep a loop going.
async function run(
  map: SocketMap,
  options: { done?: () => boolean; timeout?: number } = {},
): Promise<number> {
  const { done, timeout = 30 } = options;
  const guard = new AbortController();
  const id = setTimeout(() => guard.abort(), 10_000);
  let passes = 0;
  try {
    if (done === undefined) {
      await loop({ map, timeout, signal: guard.signal });
    } else {
      while (!done() && !guard.signal.aborted) {
        await loop({ map, timeout, count: 1, signal: guard.signal });
        passes++;
      }
    }
  } finally {
    clearTimeout(id);
  }
  assert.equal(guard.signal.aborted, false, "the guard stopped the loop");
  return passes;
}

Deno.test("call_later() runs calls in deadline order, equal deadlines in scheduling order", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  const order: string[] = [];
  call_later(0.03, () => void order.push("c"), { map });
  call_later(0.01, () => void order.push("b1"), { map });
  call_later(0.01, () => void order.push("b2"), { map });
  call_later(0, () => void order.push("a"), { map });
  await run(map); // timers alone keep loop() running
  assert.deepEqual(order, ["a", "b1", "b2", "c"]);
});

Deno.test("a call scheduled by a running call waits for the next pass", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  const order: string[] = [];
  call_later(0, () => {
    order.push("first");
    call_later(0, () => void order.push("third"), { map });
  }, { map });
  call_later(0, () => void order.push("second"), { map });
  await loop({ map, count: 1 });
  assert.deepEqual(order, ["first", "second"]);
  await run(map);
  assert.deepEqual(order, ["first", "second", "third"]);
});

Deno.test("cancel() stops a call, also from an earlier call in the same pass", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  const ran: string[] = [];
  const never = call_later(0.01, () => void ran.push("never"), { map });
  never.cancel();
  never.cancel(); // idempotent
  assert.equal(never.cancelled, true);
  assert.equal(never.active, false);
  const later = call_later(0.02, () => void ran.push("later"), { map });
  call_later(0.01, () => {
    ran.push("canceller");
    later.cancel();
  }, { map });
  await run(map);
  assert.deepEqual(ran, ["canceller"]);
  assert.throws(() => later.reset(), /Cannot reset: the timer was cancelled/);
});

Deno.test("reset() restarts the countdown, also of a call that already ran", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  const order: string[] = [];
  const moved = call_later(0.01, () => void order.push("moved"), { map });
  call_later(0.03, () => void order.push("fixed"), { map });
  moved.reset(0.06);
  await run(map);
  assert.deepEqual(order, ["fixed", "moved"]);
  assert.equal(moved.active, false);
  moved.reset();
  assert.equal(moved.active, true);
  await run(map);
  assert.deepEqual(order, ["fixed", "moved", "moved"]);
});

Deno.test("call_every() repeats until cancelled, and reset() changes its period", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  let ticks = 0;
  const tick = call_every(0.005, () => {
    ticks++;
    if (ticks === 2) tick.reset(0.01);
    if (ticks === 4) tick.cancel();
  }, { map });
  await run(map);
  assert.equal(ticks, 4);
  assert.equal(tick.active, false);
  assert.equal(tick.cancelled, true);
});

Deno.test("an error from a call no dispatcher owns rejects loop()", async (t) => {
  await t.step("thrown", async () => {
    const map: SocketMap = new Map();
    using _ = closing(map);
    call_later(0, () => {
      throw new Error("tick failed");
    }, { map });
    await assert.rejects(loop({ map }), /tick failed/);
  });
  await t.step("rejected", async () => {
    const map: SocketMap = new Map();
    using _ = closing(map);
    call_later(0, () => Promise.reject(new Error("async tick failed")), {
      map,
    });
    // Keeps the loop waiting until the rejection lands.
    const guard = call_later(5, () => {}, { map });
    await assert.rejects(loop({ map }), /async tick failed/);
    assert.equal(guard.active, true);
  });
  await t.step("ExitNow", async () => {
    const map: SocketMap = new Map();
    using _ = closing(map);
    call_every(0.001, () => {
      throw new ExitNow("stop");
    }, { map });
    await assert.rejects(loop({ map }), ExitNow);
  });
});

Deno.test("a call no dispatcher owns that throws or rejects with undefined rejects loop() with undefined", async (t) => {
  for (const mode of ["throws", "rejects"]) {
    await t.step(mode, async () => {
      const map: SocketMap = new Map();
      using _ = closing(map);
      call_later(0, () => {
        if (mode === "throws") throw undefined;
        return Promise.reject(undefined);
      }, { map });
      // Keeps the loop waiting, whatever the timing of the rejection.
      call_later(5, () => {}, { map });
      let settled = "no";
      await loop({ map }).then(
        () => settled = "resolved",
        (error) => settled = `rejected with ${error}`,
      );
      assert.equal(settled, "rejected with undefined");
    });
  }
});

Deno.test("an async call that is the last thing on the map keeps loop() running until it settles", async (t) => {
  // A later macrotask: the call's promise settles after the pass that ran it.
  const later = () => new Promise((resolve) => setTimeout(resolve, 1));
  await t.step("rejects: loop() rejects with its error", async () => {
    const map: SocketMap = new Map();
    using _ = closing(map);
    call_later(0, async () => {
      await later();
      throw new Error("late tick failed");
    }, { map });
    await assert.rejects(loop({ map }), /late tick failed/);
  });
  await t.step("resolves: loop() returns after it", async () => {
    const map: SocketMap = new Map();
    using _ = closing(map);
    let finished = false;
    call_later(0, async () => {
      await later();
      finished = true;
    }, { map });
    await loop({ map });
    assert.equal(finished, true);
  });
});

class Recorder extends Dispatcher {
  errors: unknown[] = [];
  closed = false;
  timeouts = 0;
  override readable(): boolean {
    return true;
  }
  override writable(): boolean {
    return false;
  }
  override handle_read(): void {
    this.recv(4096);
  }
  override handle_error(error: unknown): void {
    this.errors.push(error);
  }
  override handle_close(): void {
    this.closed = true;
    this.close();
  }
}

Deno.test("a dispatcher's own call goes to its handle_error(), sync or async, and close() cancels its calls", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  const [accepted, client] = await loopbackPair();
  using _client = client;
  const owner = new Recorder(accepted, map);
  owner.call_later(0, () => {
    throw new Error("sync");
  });
  owner.call_later(0, () => Promise.reject(new Error("async")));
  let ticks = 0;
  const tick = owner.call_every(0.001, () => void ticks++);
  await loopUntil(() => owner.errors.length === 2 && ticks > 0, { map });
  assert.deepEqual(
    owner.errors.map((e) => (e as Error).message).sort(),
    ["async", "sync"],
  );
  owner.close();
  assert.equal(tick.cancelled, true);
  assert.equal(map.size, 0);
  await run(map); // nothing left: returns at once
});

Deno.test("close_all() cancels every call on the map", async () => {
  const map: SocketMap = new Map();
  const [accepted, client] = await loopbackPair();
  using _client = client;
  const owner = new Recorder(accepted, map);
  const own = owner.call_later(60, () => {});
  const free = call_every(60, () => {}, { map });
  const other = call_later(60, () => {}); // on socket_map: untouched
  close_all(map);
  assert.equal(own.cancelled, true);
  assert.equal(free.cancelled, true);
  assert.equal(other.active, true);
  await run(map); // returns at once
  close_all();
  assert.equal(other.cancelled, true);
  assert.equal(socket_map.size, 0);
});

Deno.test("a pass waits no longer than the next deadline", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  const server = new Dispatcher(null, map);
  server.create_socket();
  server.bind(["127.0.0.1", 0]);
  server.listen(5);
  let fired = false;
  call_later(0.02, () => {
    fired = true;
    close_all(map);
  }, { map });
  // Without the bound the pass would sleep 30 s, and the guard stops it.
  await run(map);
  assert.equal(fired, true);
});

Deno.test("a loop with only a timer waits for it in a few passes", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  let fired = false;
  call_later(0.05, () => void (fired = true), { map });
  const passes = await run(map, { done: () => fired });
  // One wait on one timer (which may wake a millisecond early), not polling.
  assert.ok(passes <= 3, `${passes} passes`);
});

Deno.test("bad arguments throw TypeError or RangeError", () => {
  const fn = () => {};
  assert.throws(() => call_later(-1, fn), RangeError);
  assert.throws(() => call_later(Infinity, fn), RangeError);
  assert.throws(() => call_later("1" as unknown as number, fn), TypeError);
  assert.throws(() => call_later(NaN, fn), TypeError);
  assert.throws(() => call_later(1, null as unknown as () => void), TypeError);
  assert.throws(() => call_every(0, fn), RangeError);
  assert.throws(
    () => call_later(1, fn, { map: {} as unknown as SocketMap }),
    TypeError,
  );
  const d = new Dispatcher();
  assert.throws(() => (d.timeout = 0), RangeError);
  assert.throws(() => (d.timeout = "5" as unknown as number), TypeError);
  const handle = call_every(1, fn);
  assert.throws(() => handle.reset(0), RangeError);
  handle.cancel();
  assert.equal(socket_map.size, 0);
});

class Quiet extends Recorder {
  override handle_timeout(): void {
    this.timeouts++;
    this.close();
  }
}

Deno.test("Dispatcher.timeout closes an idle connection and spares one that receives or sends", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  const [idleConn, idleClient] = await loopbackPair();
  using _idleClient = idleClient;
  const [inConn, inClient] = await loopbackPair();
  const [outConn, outClient] = await loopbackPair();
  using _outClient = outClient; // never read: the kernel buffers the bytes

  // Default handle_timeout(): warns, then handle_close().
  const idle = new Recorder(idleConn, map);
  const logged: string[] = [];
  idle.log_info = (message, type) => void logged.push(`${type}: ${message}`);
  idle.timeout = 0.05;
  assert.equal(idle.timeout, 0.05);

  // Only receives: a peer on the same loop sends a byte every 10 ms.
  const receiver = new Quiet(inConn, map);
  receiver.timeout = 0.3;
  const peer = new Recorder(inClient, map);
  const feeding = peer.call_every(0.01, () => void peer.send(bytes(".")));

  // Only sends: a byte every 10 ms, and never reads.
  const sender = new Quiet(outConn, map);
  sender.readable = () => false;
  sender.timeout = 0.3;
  sender.call_every(0.01, () => void sender.send(bytes(".")));

  let observed = false;
  call_later(0.6, () => void (observed = true), { map });
  await loopUntil(() => idle.closed && observed, { map });
  assert.deepEqual(logged, ["warning: unhandled timeout event"]);
  assert.equal(receiver.timeouts, 0);
  assert.equal(sender.timeouts, 0);

  // The receiver's peer goes quiet: now it times out too.
  feeding.cancel();
  await loopUntil(() => receiver.timeouts === 1, { map });
  assert.equal(receiver.fileno(), null);
  assert.equal(sender.timeouts, 0);
});

Deno.test("a closed channel with a timeout lets go of a peer that stopped reading", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  const [conn, client] = await loopbackPair();
  using _client = client; // never reads
  const flooder = new Quiet(conn, map);
  flooder.readable = () => false;
  flooder.timeout = 0.1;
  // Fills the outbox, then the peer's window: the last write never ends.
  const chunk = new Uint8Array(64 * 1024);
  flooder.call_every(0.001, () => void flooder.send(chunk));
  await loopUntil(() => flooder.timeouts === 1, { map });
  const channel = flooder[kChannel]!;
  assert.equal(channel.closed, true);
  // Closing waits for the outbox while the peer takes bytes; this one takes
  // none, so after another 0.1 s the connection is released. No loop runs
  // now (the map is empty), so poll the flag, bounded.
  const deadline = performance.now() + 10_000;
  while (channel.stream !== null && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(channel.stream, null, "the connection was never released");
});

Deno.test("timeout = null turns the timeout off", async () => {
  const map: SocketMap = new Map();
  using _ = closing(map);
  const [conn, client] = await loopbackPair();
  using _client = client;
  const quiet = new Quiet(conn, map);
  quiet.timeout = 0.01;
  quiet.timeout = null;
  assert.equal(quiet.timeout, null);
  let observed = false;
  call_later(0.05, () => void (observed = true), { map });
  await loopUntil(() => observed, { map });
  assert.equal(quiet.timeouts, 0);
});

Deno.test("a NaN delay is named in the message", () => {
  const fn = () => {};
  assert.throws(() => call_later(NaN, fn), {
    name: "TypeError",
    message: "Cannot call later: seconds must be a number, got NaN",
  });
  assert.throws(() => call_every(NaN, fn), {
    name: "TypeError",
    message: "Cannot call every: seconds must be a number, got NaN",
  });
  assert.equal(socket_map.size, 0);
});
