// Settled I/O reaches handlers within a few passes even when no pass ever
// waits: Python ports drive the loop one pass at a time
// (`loop({ count: 1 })`) next to channels that are always writable (Python's
// default `writable()`), and Deno's scheduler polls the OS only when it idles
// or every 61 busy turns.

import assert from "node:assert/strict";
import {
  type Address,
  close_all,
  Dispatcher,
  loop,
  socket_map,
} from "../mod.ts";
import {
  bytes,
  closing,
  connectTo,
  FAMILIES,
  loopbackPair,
  tempDir,
  text,
} from "./_helpers.ts";

/** "A handful": the loop lets I/O land at least every 4 passes. */
const MAX_PASSES = 10;

/** Writable on every pass, so no pass of the loop ever waits. */
class Busy extends Dispatcher {
  override handle_write(): void {}
}

class Probe extends Dispatcher {
  connects = 0;
  accepted: Deno.Conn[] = [];
  received = "";
  override writable(): boolean {
    return !this.connected;
  }
  override handle_connect(): void {
    this.connects++;
  }
  override handle_read(): void {
    this.received += text(this.recv(64));
  }
  override handle_accepted(sock: Deno.Conn): void {
    this.accepted.push(sock);
  }
  override handle_close(): void {
    this.close();
  }
}

/** Passes of `loop({ count: 1 })` until `done()`; fails past `MAX_PASSES`. */
async function passesUntil(
  done: () => boolean,
  use_poll: boolean,
): Promise<number> {
  let passes = 0;
  while (!done() && passes < 10_000) {
    await loop({ timeout: 0.01, count: 1, use_poll });
    passes++;
  }
  assert.ok(done(), `nothing after ${passes} passes`);
  return passes;
}

function listenOn(address: Address): Deno.Listener {
  return typeof address === "string"
    ? Deno.listen({ transport: "unix", path: address })
    : Deno.listen({ hostname: address[0], port: address[1] });
}

function boundAddress(listener: Deno.Listener): Address {
  const addr = listener.addr;
  return addr.transport === "unix"
    ? (addr as Deno.UnixAddr).path
    : [(addr as Deno.NetAddr).hostname, (addr as Deno.NetAddr).port];
}

async function busyChannel(): Promise<Deno.Conn> {
  const [conn, peer] = await loopbackPair();
  new Busy(conn);
  return peer;
}

for (const use_poll of [false, true]) {
  Deno.test(`loop({ count: 1 }) delivers connect, accept and read within a handful of passes beside an always-writable channel (use_poll: ${use_poll})`, async (t) => {
    await using dir = await tempDir();
    for (const family of FAMILIES) {
      await t.step({
        name: family.name,
        ignore: family.ignore,
        fn: async (t) => {
          using _cleanup = closing();
          using _busyPeer = await busyChannel();

          using listener = listenOn(family.address(dir.path));
          const client = new Probe();
          client.create_socket(family.family);
          client.connect(boundAddress(listener));
          await t.step("connect", async () => {
            const passes = await passesUntil(
              () => client.connects === 1,
              use_poll,
            );
            assert.ok(passes <= MAX_PASSES, `connect took ${passes} passes`);
          });

          using peer = await listener.accept();
          await t.step("read", async () => {
            await peer.write(bytes("0123456789"));
            const passes = await passesUntil(
              () => client.received === "0123456789",
              use_poll,
            );
            assert.ok(passes <= MAX_PASSES, `read took ${passes} passes`);
          });

          await t.step("accept", async () => {
            const server = new Probe();
            server.create_socket(family.family);
            server.bind(family.address(dir.path));
            server.listen(5);
            using _incoming = await connectTo(server.getsockname());
            const passes = await passesUntil(
              () => server.accepted.length === 1,
              use_poll,
            );
            server.accepted[0]!.close();
            assert.ok(passes <= MAX_PASSES, `accept took ${passes} passes`);
          });
        },
      });
    }
  });
}

Deno.test("close_all() closes the loop's private kick connection", async () => {
  // The sanitizers check it: this test fails if anything stays open.
  const [conn, peer] = await loopbackPair();
  using _peer = peer;
  new Busy(conn);
  await loop({ timeout: 0, count: 8 });
  close_all();
  assert.equal(socket_map.size, 0);
});

Deno.test("without net permission the loop still delivers reads beside an always-writable channel", async () => {
  await using dir = await tempDir();
  const script = `${dir.path}/busy.ts`;
  const mod = new URL("../mod.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `
import { close_all, Dispatcher, loop } from "${mod}";
class Busy extends Dispatcher { handle_write() {} }
const path = "${dir.path}/s.sock";
const listener = Deno.listen({ transport: "unix", path });
const [conn, peer] = await Promise.all([
  Deno.connect({ transport: "unix", path }),
  listener.accept(),
]);
let got = "";
class Reader extends Busy {
  handle_read() { got += new TextDecoder().decode(this.recv(64)); }
}
new Reader(conn);
await peer.write(new TextEncoder().encode("hello"));
let passes = 0;
while (got !== "hello" && passes < 100000) {
  await loop({ timeout: 0.01, count: 1 });
  passes++;
}
close_all();
peer.close();
listener.close();
console.log(got);
`,
  );
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      `--allow-read=${dir.path}`,
      `--allow-write=${dir.path}`,
      `--allow-net=unix:${dir.path}/s.sock`,
      script,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, text(stderr));
  assert.equal(text(stdout).trim(), "hello");
});
