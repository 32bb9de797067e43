// The outbox's shortcuts must never change what the peer receives or when a
// handler's bytes leave: sends made while input is still being consumed are
// merged, not lost or stalled; pooled chunks are never written twice; a
// close from outside any hook wakes a waiting loop; and the replies of a pass
// that dispatches several channels leave together once its hooks have run.

import assert from "node:assert/strict";
import { Dispatcher, DispatcherWithSend, loop, poll, poll2 } from "../mod.ts";
import { Channel, kChannel } from "../_channel.ts";
import {
  bytes,
  closing,
  concat,
  loopbackPair,
  loopUntil,
  readAll,
  text,
  writeAll,
} from "./_helpers.ts";

// Until every channel has input to report, without running a pass (bounded:
// input that never lands fails the test instead of hanging it).
async function untilReadReady(channels: Channel<unknown>[]): Promise<void> {
  for (let waited = 0; !channels.every((c) => c.readReady());) {
    assert.ok(waited++ < 5000, "the input never landed");
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

// Echoes in small slices, so one read's bytes take many passes to consume;
// with `kept` set, it also keeps every slice recv() returned.
class SliceEcho extends DispatcherWithSend {
  slice = 1000;
  kept: Uint8Array[] | null = null;
  override handle_read(): void {
    const data = this.recv(this.slice);
    this.kept?.push(data);
    if (data.length > 0) this.send(data);
  }
  override handle_close(): void {
    this.close();
  }
}

// 4 MiB of a pattern that never repeats at a 64 KiB period, so a chunk
// written twice, out of order or overwritten cannot go unnoticed.
const PATTERN = new Uint8Array(4 * 1024 * 1024).map((_, i) =>
  (i * 7 + (i >> 16)) & 0xff
);

// Streams PATTERN from `client` through the loop and returns what came back.
async function echoPattern(client: Deno.Conn): Promise<Uint8Array> {
  const writing = writeAll(client, PATTERN).then(() => client.closeWrite());
  const reading = readAll(client);
  await loop({ timeout: 5 });
  await writing;
  return await reading; // readAll() closes the client
}

function assertPattern(got: Uint8Array, what: string): void {
  assert.equal(got.length, PATTERN.length, what);
  assert.ok(got.every((byte, i) => byte === PATTERN[i]), `the ${what} differs`);
}

Deno.test("sends merged while input is consumed arrive complete and in order", async () => {
  using _cleanup = closing();
  const [server, client] = await loopbackPair();
  new SliceEcho(server);
  assertPattern(await echoPattern(client), "echo");
});

Deno.test("bytes recv() returned stay the caller's while later reads and echoes reuse buffers", async () => {
  using _cleanup = closing();
  const [server, client] = await loopbackPair();
  // A read buffer handed to recv() and then reused by a later read (or the
  // outbox) would change what the handler kept.
  const handler = new SliceEcho(server);
  handler.slice = 65536;
  handler.kept = [];
  assertPattern(await echoPattern(client), "echo");
  assert.ok(
    handler.kept.some((chunk) => chunk.length > 32 * 1024),
    "no read was large enough to be handed over",
  );
  assertPattern(concat(handler.kept), "kept");
});

Deno.test("recv_into() and recv() in turn echo intact, and what recv() returned stays the caller's", async () => {
  using _cleanup = closing();
  const [server, client] = await loopbackPair();
  // recv() copies out of (or takes) the read buffer that recv_into() leaves
  // with the connection: a view lent without either would change under the
  // handler at the next read. Sizes cross the point where a read's buffer
  // is lent whole (32 KiB) and where the read buffer grows.
  const sizes = [7, 65536, 1000, 40_000, 3];
  const scratch = new Uint8Array(65536);
  const kept: [offset: number, bytes: Uint8Array][] = [];
  let offset = 0;
  let calls = 0;
  class Mixed extends DispatcherWithSend {
    override handle_read(): void {
      const size = sizes[calls % sizes.length]!;
      let data: Uint8Array;
      if (calls++ % 2 === 0) {
        data = this.recv(size);
        kept.push([offset, data]);
      } else {
        data = scratch.subarray(0, this.recv_into(scratch, size));
      }
      offset += data.length;
      if (data.length > 0) this.send(data);
    }
    override handle_close(): void {
      this.close();
    }
  }
  new Mixed(server);
  assertPattern(await echoPattern(client), "echo");
  assert.ok(kept.some(([, bytes]) => bytes.length > 32 * 1024));
  for (const [at, bytes] of kept) {
    assert.deepEqual(
      bytes,
      PATTERN.subarray(at, at + bytes.length),
      `at ${at}`,
    );
  }
});

Deno.test("a handler that stops reading still gets its held output written", async () => {
  using _cleanup = closing();
  const [server, client] = await loopbackPair();
  using _client = client;
  // Replies to the first slice of a larger read, then stops reading: the
  // reply must not wait for input that will never be consumed.
  class OneReply extends SliceEcho {
    replied = false;
    override readable(): boolean {
      return !this.replied;
    }
    override handle_read(): void {
      super.handle_read();
      this.replied = true;
    }
  }
  const handler = new OneReply(server);
  handler.slice = 5;
  await client.write(new TextEncoder().encode("hello, and the rest"));
  const reply = new Uint8Array(5);
  let got = 0;
  const reading = (async () => {
    while (got < 5) got += (await client.read(reply.subarray(got))) ?? 5;
  })();
  await loopUntil(() => got === 5, { limit: 5 });
  await reading;
  assert.equal(new TextDecoder().decode(reply), "hello");
});

Deno.test("close() from a timer ends a loop that waits with a long timeout", async () => {
  using _cleanup = closing();
  const server = new Dispatcher();
  server.create_socket();
  server.bind(["127.0.0.1", 0]);
  server.listen(5);
  const timer = setTimeout(() => server.close(), 20);
  const started = performance.now();
  // Without the wake-up this pass would sit out its whole 60 seconds (the
  // test's sanitizers would then report the timer); the bound is generous.
  await loop({ timeout: 60 });
  clearTimeout(timer);
  assert.ok(performance.now() - started < 30_000);
});

Deno.test("output held while input is consumed in tiny slices leaves within 16 passes", async () => {
  const [server, client] = await loopbackPair();
  // The channel driven by hand, one flush() per pass as the loop does, over a
  // real connection: without the bound nothing would be written until all 100
  // bytes were consumed (pass 100).
  const channel = new Channel(null);
  channel.stream = server;
  channel.wantRead = true;
  await client.write(new Uint8Array(100).fill(7));
  channel.armRead();
  await untilReadReady([channel]);
  for (let pass = 0; pass < 20; pass++) {
    channel.flush();
    const byte = channel.recv(1);
    assert.ok(byte !== null && byte.length === 1);
    assert.equal(channel.send(byte), 1);
  }
  const reply = new Uint8Array(100);
  // A bound on a hang, not a timing: nothing written means no reply ever.
  let timedOut = false;
  const guard = setTimeout(() => {
    timedOut = true;
    client.close();
  }, 10_000);
  const got = await client.read(reply).catch(() => null);
  clearTimeout(guard);
  channel.close();
  if (!timedOut) client.close();
  assert.ok(got !== null && got >= 16 && got <= 20, `got ${got} bytes`);
  assert.ok(reply.subarray(0, got).every((b) => b === 7));
});

Deno.test("replies of a pass that dispatches several channels leave after its hooks, one channel's inside its hook", async (t) => {
  using _cleanup = closing();
  const pairs = [await loopbackPair(), await loopbackPair()];
  const log: string[] = [];
  // The spy sees each write op the outbox starts on a connection.
  function spied(name: string, conn: Deno.TcpConn): Deno.TcpConn {
    const write = conn.write.bind(conn);
    conn.write = (data: Uint8Array) => {
      log.push(`write ${name}`);
      return write(data);
    };
    return conn;
  }
  const errors: string[] = [];
  class Logged extends Dispatcher {
    name = "";
    alsoWritable = false;
    override handle_read(): void {
      log.push(`read ${this.name}`);
      this.send(this.recv(64));
      log.push(`sent ${this.name}`);
    }
    override handle_error(error: unknown): void {
      errors.push(`${this.name}: ${(error as Error).message}`);
      this.close();
    }
    override writable(): boolean {
      return this.alsoWritable;
    }
    override handle_write(): void {}
  }
  const handlers = pairs.map(([server], i) => {
    const handler = new Logged(spied(`${i}`, server));
    handler.name = `${i}`;
    return handler;
  });
  const landed = (which: Logged[]) =>
    untilReadReady(which.map((h) => h[kChannel]!));
  const clients = pairs.map(([, client]) => client);
  const reply = new Uint8Array(2);
  // Both hooks, then both writes, in map order.
  const BOTH = ["read 0", "sent 0", "read 1", "sent 1", "write 0", "write 1"];
  // One pass arms both reads (no input yet); the input then lands while no
  // pass runs, so the next pass finds both channels ready at once.
  async function passWith(
    senders: Deno.TcpConn[],
    pass: typeof poll = poll,
  ): Promise<void> {
    log.length = 0;
    await pass(0);
    for (const client of senders) await client.write(bytes("hi"));
    await landed(senders.map((client) => handlers[clients.indexOf(client)]!));
    await pass(0);
    for (const client of senders) {
      assert.equal(await client.read(reply), 2);
      assert.equal(text(reply), "hi");
    }
  }
  await t.step(
    "two ready channels: both hooks run, then both writes",
    async () => {
      await passWith(clients);
      assert.deepEqual(log, BOTH);
    },
  );
  await t.step(
    "one ready channel: its write starts inside its hook",
    async () => {
      await passWith([clients[1]!]);
      assert.deepEqual(log, ["read 1", "write 1", "sent 1"]);
    },
  );
  await t.step(
    "one channel both read- and write-ready: still inside its hook",
    async () => {
      handlers[1]!.alsoWritable = true;
      await passWith([clients[1]!]);
      handlers[1]!.alsoWritable = false;
      assert.deepEqual(log, ["read 1", "write 1", "sent 1"]);
    },
  );
  await t.step("poll2(): the same for two ready channels", async () => {
    await passWith(clients, poll2);
    assert.deepEqual(log, BOTH);
  });
  await t.step(
    "a deferred write that throws at once fails its own channel alone",
    async () => {
      pairs[0]![0].write = () => {
        throw new Error("write refused");
      };
      await poll(0);
      for (const client of clients) await client.write(bytes("hi"));
      await landed(handlers);
      await poll(0);
      // The other channel's deferred write still went out.
      assert.equal(await clients[1]!.read(reply), 2);
      assert.equal(text(reply), "hi");
      // The next pass hands the failure to its channel's handle_error(),
      // once, and that channel closes.
      await poll(0);
      await poll(0);
      assert.deepEqual(errors, ["0: write refused"]);
      assert.equal(await clients[0]!.read(reply), null);
    },
  );
  for (const client of clients) client.close();
});
