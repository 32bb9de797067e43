// Tests of loop.ts: CPython's HelperFunctionTests (test_asyncore.py) ported,
// then loop()/poll() options, error routing of async hooks, and bad input.

import assert from "node:assert/strict";
import {
  call_later,
  close_all,
  compact_traceback,
  Dispatcher,
  ExitNow,
  loop,
  poll,
  poll2,
  poll3,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  POLLPRI,
  read,
  readwrite,
  socket_map,
  type SocketMap,
  write,
} from "../mod.ts";
import {
  bytes,
  closing,
  connectDispatcher,
  connectTo,
  loopbackPair,
  loopUntil,
  watchRejections,
  writeAll,
} from "./_helpers.ts";

// Duck-typed stand-ins, as in CPython's test: read()/write()/readwrite() only
// call hook methods, so plain objects exercise the error routing alone.
function asDispatcher(obj: object): Dispatcher {
  return obj as unknown as Dispatcher;
}

function exitingDummy(): Dispatcher {
  const exit = (): never => {
    throw new ExitNow();
  };
  return asDispatcher({
    handle_read_event: exit,
    handle_write_event: exit,
    handle_expt_event: exit,
    handle_close: exit,
  });
}

function crashingDummy(): Dispatcher & { errorHandled: boolean } {
  const crash = (): never => {
    throw new Error("crash");
  };
  const dummy = {
    errorHandled: false,
    handle_read_event: crash,
    handle_write_event: crash,
    handle_expt_event: crash,
    handle_close: crash,
    handle_error() {
      dummy.errorHandled = true;
    },
  };
  return dummy as unknown as Dispatcher & { errorHandled: boolean };
}

Deno.test("read() and write() re-throw ExitNow from a handler", () => {
  assert.throws(() => read(exitingDummy()), ExitNow);
  assert.throws(() => write(exitingDummy()), ExitNow);
  assert.throws(() => readwrite(exitingDummy(), POLLPRI), ExitNow);
});

Deno.test("read() and write() pass any other error to handle_error()", () => {
  for (
    const dispatch of [read, write, (d: Dispatcher) => readwrite(d, POLLPRI)]
  ) {
    const dummy = crashingDummy();
    dispatch(dummy);
    assert.equal(dummy.errorHandled, true);
  }
});

Deno.test("readwrite() calls the handler each POLL flag names", async (t) => {
  const attributes = ["read", "expt", "write", "closed", "errorHandled"];
  const table: [flag: number, name: string, expected: string][] = [
    [POLLIN, "POLLIN", "read"],
    [POLLPRI, "POLLPRI", "expt"],
    [POLLOUT, "POLLOUT", "write"],
    [POLLERR, "POLLERR", "closed"],
    [POLLHUP, "POLLHUP", "closed"],
    [POLLNVAL, "POLLNVAL", "closed"],
  ];
  for (const [flag, name, expected] of table) {
    await t.step(`${name} calls ${expected}`, () => {
      const seen: Record<string, boolean> = {
        read: false,
        expt: false,
        write: false,
        closed: false,
        errorHandled: false,
      };
      readwrite(
        asDispatcher({
          handle_read_event: () => void (seen.read = true),
          handle_write_event: () => void (seen.write = true),
          handle_expt_event: () => void (seen.expt = true),
          handle_close: () => void (seen.closed = true),
          handle_error: () => void (seen.errorHandled = true),
        }),
        flag,
      );
      for (const attribute of attributes) {
        assert.equal(seen[attribute], attribute === expected, attribute);
      }
      assert.throws(() => readwrite(exitingDummy(), flag), ExitNow);
      const crashing = crashingDummy();
      assert.equal(crashing.errorHandled, false);
      readwrite(crashing, flag);
      assert.equal(crashing.errorHandled, true);
    });
  }
});

Deno.test("readwrite() sends a disconnect error to handle_close(), not handle_error()", () => {
  const calls: string[] = [];
  readwrite(
    asDispatcher({
      handle_read_event() {
        throw new Deno.errors.ConnectionReset("reset by peer");
      },
      handle_close: () => void calls.push("close"),
      handle_error: () => void calls.push("error"),
    }),
    POLLIN,
  );
  assert.deepEqual(calls, ["close"]);
});

Deno.test("readwrite() with several flags calls each handler once", () => {
  const calls: string[] = [];
  readwrite(
    asDispatcher({
      handle_read_event: () => void calls.push("read"),
      handle_write_event: () => void calls.push("write"),
      handle_expt_event: () => void calls.push("expt"),
      handle_close: () => void calls.push("close"),
    }),
    POLLIN | POLLOUT | POLLPRI | POLLHUP,
  );
  assert.deepEqual(calls, ["read", "write", "expt", "close"]);
});

class DummyChannel {
  closed = false;
  close(): void {
    this.closed = true;
  }
}

function dummyMap(
  channels: DummyChannel[],
  map: SocketMap = new Map(),
): SocketMap {
  for (let i = 0; i < 10; i++) {
    const channel = new DummyChannel();
    channels.push(channel);
    map.set(100_000 + i, asDispatcher(channel));
  }
  return map;
}

Deno.test("close_all(map) closes everything in the map and empties it", () => {
  const channels: DummyChannel[] = [];
  const map = dummyMap(channels);
  assert.ok(channels.every((c) => !c.closed));
  close_all(map);
  assert.equal(map.size, 0);
  assert.ok(channels.every((c) => c.closed));
});

Deno.test("close_all() closes everything in socket_map by default", () => {
  const channels: DummyChannel[] = [];
  dummyMap(channels, socket_map);
  close_all();
  assert.equal(socket_map.size, 0);
  assert.ok(channels.every((c) => c.closed));
});

Deno.test("close_all() propagates close() errors unless ignore_all", () => {
  const failing = () =>
    new Map([[
      1,
      asDispatcher({
        close() {
          throw new Error("cannot close");
        },
      }),
    ]]);
  assert.throws(() => close_all(failing()), /cannot close/);
  const map = failing();
  close_all(map, true);
  assert.equal(map.size, 0);
  const exiting = new Map([[
    1,
    asDispatcher({
      close() {
        throw new ExitNow();
      },
    }),
  ]]);
  assert.throws(() => close_all(exiting, true), ExitNow);
  const gone = new Map([[
    1,
    asDispatcher({
      close() {
        throw new Deno.errors.BadResource("already closed");
      },
    }),
  ]]);
  close_all(gone);
  assert.equal(gone.size, 0);
});

function spam(): never {
  throw new Error("I don't like spam!");
}

Deno.test("compact_traceback() summarises the frame that threw", () => {
  let caught: unknown;
  try {
    spam();
  } catch (error) {
    caught = error;
  }
  const [[file, fn, line], type, value, info] = compact_traceback(caught);
  assert.match(file, /loop_test\.ts$/);
  assert.equal(fn, "spam");
  assert.match(line, /^\d+$/);
  assert.equal(type, "Error");
  assert.equal(value, "I don't like spam!");
  // Outermost first, so the innermost frame closes the summary.
  assert.ok(info.endsWith(`[${file}|${fn}|${line}]`), info);
});

Deno.test("compact_traceback() names the error's class", () => {
  const [, type, value] = compact_traceback(new RangeError("out"));
  assert.equal(type, "RangeError");
  assert.equal(value, "out");
});

Deno.test("compact_traceback() throws TypeError for a value without a stack", () => {
  assert.throws(() => compact_traceback("not an error"), TypeError);
  assert.throws(() => compact_traceback(undefined), TypeError);
});

// A client that connects to a raw listener, then records every hook call.
class Recorder extends Dispatcher {
  calls: string[] = [];
  wantWrite = false;
  override writable(): boolean {
    return this.wantWrite || !this.connected;
  }
  override handle_connect(): void {}
  override handle_read(): void {
    this.calls.push("read");
    this.recv(1024);
  }
  override handle_write(): void {
    this.calls.push("write");
  }
  override handle_close(): void {
    this.calls.push("close");
    this.close();
  }
  override handle_error(error: unknown): void {
    this.calls.push(`error: ${error}`);
    this.close();
  }
}

async function connectedRecorder(
  listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
): Promise<[Recorder, Deno.Conn]> {
  const client = new Recorder();
  client.create_socket();
  const accepted = await connectDispatcher(client, listener);
  // Connecting dispatched one write event (handle_connect, then handle_write).
  client.calls.length = 0;
  return [client, accepted];
}

interface WritingRecorder extends Disposable {
  client: Recorder;
}

// A Recorder connected to a private listener and asking for write events;
// disposing closes the peer and the listener (close_all() the Recorder).
async function writingRecorder(): Promise<WritingRecorder> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const [client, peer] = await connectedRecorder(listener);
    client.wantWrite = true;
    return {
      client,
      [Symbol.dispose]() {
        peer.close();
        listener.close();
      },
    };
  } catch (error) {
    listener.close();
    throw error;
  }
}

Deno.test("loop() runs exactly count passes", async () => {
  using _cleanup = closing();
  using connected = await writingRecorder();
  const client = connected.client;
  await loop({ count: 3, timeout: 0 });
  assert.deepEqual(client.calls, ["write", "write", "write"]);
  await loop({ count: 0 });
  assert.equal(client.calls.length, 3);
});

Deno.test("loop() returns at once when the map is empty", async () => {
  await loop({ map: new Map() });
  await loop();
  assert.equal(socket_map.size, 0);
});

Deno.test("loop() stops when the last channel closes", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using _cleanup = closing();
  const [client, accepted] = await connectedRecorder(listener);
  accepted.close();
  // Default timeout (30 s): returning proves EOF woke the wait and emptied the map.
  await loop();
  assert.deepEqual(client.calls, ["read", "close"]);
  assert.equal(socket_map.size, 0);
});

class RecordingServer extends Recorder {
  handlers: Recorder[] = [];
  constructor() {
    super();
    this.create_socket();
    this.bind(["127.0.0.1", 0]);
    this.listen(5);
  }
  override handle_accepted(sock: Deno.Conn): void {
    this.handlers.push(new Recorder(sock));
  }
}

Deno.test("an idle pass waits for its timeout without calling any handler", async () => {
  using _cleanup = closing();
  const server = new RecordingServer();
  const client = new Recorder();
  client.create_socket();
  client.connect(server.getsockname());
  await loopUntil(() => client.connected && server.handlers.length === 1);
  const [handler] = server.handlers;
  client.calls.length = 0;
  let timerFired = false;
  // The pass must wait, not spin: a shorter timer fires before it returns.
  const timer = setTimeout(() => timerFired = true, 50);
  await loop({ count: 1, timeout: 0.2 });
  clearTimeout(timer);
  assert.equal(timerFired, true);
  assert.deepEqual(client.calls, []);
  assert.deepEqual(server.calls, []);
  assert.deepEqual(handler?.calls, []);
});

Deno.test("loop() resolves when its signal aborts", async () => {
  using _cleanup = closing();
  const server = new RecordingServer();
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 20);
  // timeout: null waits without bound, so only the abort can end the pass.
  await loop({ timeout: null, signal: stop.signal });
  clearTimeout(timer);
  assert.deepEqual(server.calls, []);
  assert.equal(socket_map.size, 1);
});

Deno.test("a pass without bound ends on I/O, not on the timer a bounded pass left", async () => {
  using _cleanup = closing();
  const server = new RecordingServer();
  const connectIn = (ms: number): Promise<Deno.Conn> =>
    new Promise((resolve, reject) => {
      setTimeout(
        () => connectTo(server.getsockname()).then(resolve, reject),
        ms,
      );
    });
  // The first pass is bounded by this call (100 ms), and ends early on the
  // first client, whose accept cancels it: the second pass has no bound,
  // while the first pass's timer is still pending.
  const bound = call_later(0.1, () => {});
  const accepted = server.handle_accepted.bind(server);
  server.handle_accepted = (sock) => {
    bound.cancel();
    accepted(sock);
  };
  const clients = [connectIn(20), connectIn(250)];
  try {
    await loop({ count: 2, timeout: null });
    // The second pass waited past that timer's time for the second client.
    assert.equal(server.handlers.length, 2);
  } finally {
    for (const client of await Promise.all(clients)) client.close();
  }
});

Deno.test("loop() with an already aborted signal runs no pass", async () => {
  using _cleanup = closing();
  using connected = await writingRecorder();
  const client = connected.client;
  await loop({ signal: AbortSignal.abort() });
  assert.deepEqual(client.calls, []);
});

Deno.test("loop() rejects with ExitNow thrown by a handler", async () => {
  using _cleanup = closing();
  using connected = await writingRecorder();
  const client = connected.client;
  client.handle_write = () => {
    throw new ExitNow("stop");
  };
  await assert.rejects(loop({ timeout: 1 }), ExitNow);
  assert.equal(socket_map.size, 1);
});

Deno.test("loop() rejects with ExitNow from an async hook", async () => {
  using _cleanup = closing();
  using connected = await writingRecorder();
  const client = connected.client;
  let thrown = false;
  client.handle_write = async () => {
    await Promise.resolve();
    if (thrown) return;
    thrown = true;
    throw new ExitNow("stop");
  };
  await assert.rejects(loop({ timeout: 1, count: 100 }), ExitNow);
});

Deno.test("an async hook's next step runs before the next pass asks readable()", async (t) => {
  // The hook stops reading after its await, with a byte still unread: the
  // pass after it must see readable() false, as the hook's own code would.
  class Stopper extends Dispatcher {
    reads = 0;
    stopped = false;
    override readable(): boolean {
      return !this.stopped;
    }
    override writable(): boolean {
      return false;
    }
    override async handle_read(): Promise<void> {
      this.reads++;
      this.recv(1);
      await Promise.resolve();
      this.stopped = true;
    }
  }
  for (const use_poll of [false, true]) {
    await t.step(`use_poll: ${use_poll}`, async () => {
      using _cleanup = closing();
      const [server, client] = await loopbackPair();
      try {
        const stopper = new Stopper(server);
        await writeAll(client, bytes("ab"));
        await loop({ timeout: 0.01, count: 6, use_poll });
        assert.equal(stopper.reads, 1);
      } finally {
        client.close();
      }
    });
  }
});

Deno.test("a hook's rejected promise reaches handle_error(), never an unhandled rejection", async () => {
  using rejections = watchRejections();
  using _cleanup = closing();
  using connected = await writingRecorder();
  const client = connected.client;
  client.handle_write = async () => {
    await Promise.resolve();
    throw new Error("async failure");
  };
  await loopUntil(() => client.calls.length > 0);
  assert.deepEqual(client.calls, ["error: Error: async failure"]);
  // handle_error() closed the channel, so the loop has nothing left.
  await loop({ timeout: 1 });
  assert.equal(socket_map.size, 0);
  assert.deepEqual(rejections.reasons, []);
});

Deno.test("an error a handle_error() throws rejects loop()", async () => {
  using _cleanup = closing();
  using connected = await writingRecorder();
  const client = connected.client;
  client.handle_write = () => {
    throw new Error("first");
  };
  client.handle_error = (error) => {
    throw error;
  };
  await assert.rejects(loop({ timeout: 1 }), /first/);
});

Deno.test("poll(), poll2() and poll3() dispatch one pass", async () => {
  assert.equal(poll3, poll2);
  using _cleanup = closing();
  using connected = await writingRecorder();
  const client = connected.client;
  await poll(0);
  await poll2(0);
  await poll3(0, socket_map);
  assert.deepEqual(client.calls, ["write", "write", "write"]);
});

Deno.test("loop() serves the map it is given, not socket_map", async () => {
  const map: SocketMap = new Map();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = new Recorder(null, map);
  client.create_socket();
  client.connect(["127.0.0.1", listener.addr.port]);
  assert.equal(socket_map.size, 0);
  assert.equal(map.size, 1);
  using _cleanup = closing(map);
  const accepted = listener.accept();
  await loopUntil(() => client.connected, { map });
  using _peer = await accepted;
});

Deno.test("loop() rejects bad options", async (t) => {
  const cases: [name: string, options: unknown, error: ErrorConstructor][] = [
    ["options an array", [], TypeError],
    ["options a string", "fast", TypeError],
    ["timeout a string", { timeout: "1" }, TypeError],
    ["timeout NaN", { timeout: NaN }, TypeError],
    ["timeout negative", { timeout: -1 }, RangeError],
    ["count negative", { count: -1 }, RangeError],
    ["count fractional", { count: 1.5 }, RangeError],
    ["count a string", { count: "2" }, TypeError],
    ["map an object", { map: {} }, TypeError],
    ["signal an object", { signal: {} }, TypeError],
  ];
  for (const [name, options, error] of cases) {
    await t.step(`${name} → ${error.name}`, async () => {
      await assert.rejects(
        loop(options as Parameters<typeof loop>[0]),
        (e: unknown) => e instanceof error && /^Cannot /.test(e.message),
      );
    });
  }
});

Deno.test("loop() takes Python's positional (timeout, use_poll, map, count)", async (t) => {
  using _cleanup = closing();
  using connected = await writingRecorder();
  const client = connected.client;
  await t.step("count passes with use_poll and the default map", async () => {
    await loop(0, true, null, 3);
    assert.deepEqual(client.calls, ["write", "write", "write"]);
  });
  await t.step("a map given positionally is the one served", async () => {
    client.calls.length = 0;
    await loop(0, false, new Map(), 5);
    assert.deepEqual(client.calls, []);
    await loop(0, false, socket_map, 2);
    assert.deepEqual(client.calls, ["write", "write"]);
  });
});

Deno.test("loop() rejects bad positional arguments", async (t) => {
  const cases: [name: string, args: unknown[], error: ErrorConstructor][] = [
    ["use_poll a string", [1, "yes"], TypeError],
    ["map an object", [1, false, {}], TypeError],
    ["count negative", [1, false, null, -1], RangeError],
    ["count a string", [1, false, null, "2"], TypeError],
    ["options and more arguments", [{ timeout: 1 }, false], TypeError],
    ["five arguments", [1, false, null, 1, 1], TypeError],
    ["timeout negative", [-1], RangeError],
  ];
  const call = loop as (...args: unknown[]) => Promise<void>;
  for (const [name, args, error] of cases) {
    await t.step(`${name} → ${error.name}`, async () => {
      await assert.rejects(
        call(...args),
        (e: unknown) => e instanceof error && /^Cannot /.test(e.message),
      );
    });
  }
});

Deno.test("poll() and poll2() reject a bad timeout or map", async () => {
  for (const pass of [poll, poll2]) {
    await assert.rejects(pass(-1), RangeError);
    await assert.rejects(pass("0" as unknown as number), TypeError);
    await assert.rejects(pass(0, {} as SocketMap), TypeError);
  }
});

Deno.test("close_all() forgets an ExitNow that lands after loop() stopped", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using _cleanup = closing();
  const [client, accepted] = await connectedRecorder(listener);
  using _peer = accepted;
  client.wantWrite = true;
  // Every write event starts a hook that fails later: the first failure
  // ends the loop, the others land after it.
  const hooks: Promise<void>[] = [];
  client.handle_write = () => {
    const hook = new Promise<void>((_, reject) =>
      setTimeout(() => reject(new ExitNow("late")), 5)
    );
    hooks.push(hook);
    return hook;
  };
  await assert.rejects(loop({ timeout: 1 }), ExitNow);
  await Promise.allSettled(hooks);
  assert.ok(hooks.length > 1);
  close_all();
  const [next, second] = await connectedRecorder(listener);
  using _second = second;
  next.wantWrite = true;
  await loop({ count: 2, timeout: 0 });
  assert.deepEqual(next.calls, ["write", "write"]);
});

Deno.test("a channel that is always writable (Python's default) does not starve reads", async () => {
  using _cleanup = closing();
  // Writable on every pass and never waits, so no pass ever waits for I/O:
  // reads land only because the loop lets the event loop turn.
  class Busy extends Dispatcher {
    writes = 0;
    override handle_write(): void {
      this.writes++;
    }
  }
  class Reader extends Dispatcher {
    received = "";
    override writable(): boolean {
      return false;
    }
    override handle_read(): void {
      this.received += new TextDecoder().decode(this.recv(64));
    }
  }
  const [busyConn, busyPeer] = await loopbackPair();
  using _busyPeer = busyPeer;
  const busy = new Busy(busyConn);
  const [readerConn, peer] = await loopbackPair();
  using _peer = peer;
  const reader = new Reader(readerConn);
  await peer.write(new TextEncoder().encode("ping"));
  await loopUntil(() => reader.received === "ping", {
    timeout: 0,
    what: "the read reached the reader",
  });
  assert.ok(busy.writes > 0);
});

// `promise`, or a failure naming `what` if it has not settled after 10 s (a
// bound against a hang, not a timing assertion).
async function settles<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} never settled`)),
      10_000,
    );
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("two loops on one map share its passes, each settling on its own count", async () => {
  using _cleanup = closing();
  using connected = await writingRecorder();
  const client = connected.client;
  // Each pass calls handle_write() once. The first loop has run its first
  // pass when the second starts: the second counts passes 2 and 3, then
  // drives 3 more once the first is done.
  const first = loop({ count: 3, timeout: 0 });
  const second = loop({ count: 5, timeout: 0 });
  await settles(Promise.all([first, second]), "the loops");
  assert.equal(client.calls.length, 6);
});

Deno.test("two waiting loops on one map both settle when their signals abort", async () => {
  using _cleanup = closing();
  const server = new RecordingServer();
  const stopFirst = new AbortController();
  const stopSecond = new AbortController();
  const first = loop({ timeout: null, signal: stopFirst.signal });
  const second = loop({ timeout: 0.01, signal: stopSecond.signal });
  // The second goes on driving the passes once the first stops.
  stopFirst.abort();
  await settles(first, "the first loop");
  stopSecond.abort();
  await settles(second, "the second loop");
  // A loop and a poll() on one map: the poll() takes the loop's next pass.
  const stop = new AbortController();
  const looping = loop({ timeout: 0.01, signal: stop.signal });
  await settles(poll(0.01), "poll()");
  stop.abort();
  await settles(looping, "the loop beside poll()");
  assert.deepEqual(server.calls, []);
});

Deno.test("loop() called from a hook settles after its passes while the outer loop goes on", async (t) => {
  for (
    const style of ["awaited in an async hook", "left running by a sync hook"]
  ) {
    await t.step(style, async () => {
      using rejections = watchRejections();
      using _cleanup = closing();
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const [client, peer] = await connectedRecorder(listener);
      using _peer = peer;
      const inner: string[] = [];
      client.handle_read = (): Promise<void> | void => {
        client.calls.push("read");
        client.recv(1024);
        // Python's nested loop: two passes (that wait), then it returns.
        const nested = loop({ count: 2, timeout: 0.01 }).then(() => {
          inner.push(`settled after ${client.calls.length} calls`);
        });
        if (style.startsWith("awaited")) return nested;
      };
      await peer.write(new Uint8Array([1]));
      await settles(
        loopUntil(() => inner.length === 1, { timeout: 0.01 }),
        "the outer loop",
      );
      assert.deepEqual(inner, ["settled after 1 calls"]);
      assert.deepEqual(client.calls, ["read"]);
      // A nested loop with a count that outlives the outer loop drives the
      // passes itself once the outer one is done.
      inner.length = 0;
      client.calls.length = 0;
      await peer.write(new Uint8Array([2]));
      await settles(loop({ count: 1, timeout: 0.01 }), "a one-pass loop");
      // The read may land after the one pass: then the nested loop has not
      // started yet, and a pass more brings it.
      await settles(
        loopUntil(() => inner.length === 1, { timeout: 0.01 }),
        "the nested loop",
      );
      assert.deepEqual(inner, ["settled after 1 calls"]);
      assert.deepEqual(rejections.reasons, []);
    });
  }
});

Deno.test("an ExitNow that rejects the driving loop stops the loops counting its passes", async () => {
  using _cleanup = closing();
  using connected = await writingRecorder();
  const client = connected.client;
  let nested: Promise<void> | null = null;
  client.handle_write = () => {
    client.calls.push("write");
    // Unbounded: it would serve forever if it drove on after the ExitNow.
    if (client.calls.length === 1) nested = loop({ timeout: 0 });
    if (client.calls.length === 3) throw new ExitNow("stop");
  };
  await assert.rejects(settles(loop({ timeout: 0 }), "the loop"), ExitNow);
  await settles(nested!, "the nested loop");
  assert.equal(client.calls.length, 3);
});

Deno.test("a NaN timeout is named in the message", async () => {
  await assert.rejects(loop({ timeout: NaN }), {
    name: "TypeError",
    message: "Cannot poll: timeout must be a number of seconds, got NaN",
  });
  await assert.rejects(poll(NaN), {
    name: "TypeError",
    message: "Cannot poll: timeout must be a number of seconds, got NaN",
  });
});
