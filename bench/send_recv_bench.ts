/**
 * The inbox/outbox path: bytes taken by `send()` on one dispatcher, written
 * by its channel, read into the peer's inbox and taken by `recv()`, over a
 * real loopback connection. Each group has the same exchange on raw
 * `Deno.Conn`s as its baseline, so the ratio is what the channel layer and
 * the loop add to Deno's own I/O.
 *
 *     deno bench -A bench/send_recv_bench.ts
 *
 * @module
 */

import {
  close_all,
  Dispatcher,
  poll,
  type SocketMap,
} from "@asyncore/asyncore";
import { connectedPairs, writeAll } from "./_pairs.ts";

const SMALL = new Uint8Array(64).fill(0x61);
const LARGE = new Uint8Array(64 * 1024).fill(0x62);
// Bound on the passes one exchange may take, so a lost byte fails the
// benchmark instead of hanging it.
const MAX_PASSES = 10_000;

/** Counts what arrives; echoes it back when asked to. */
class Peer extends Dispatcher {
  received = 0;
  echo = false;

  override writable(): boolean {
    return false;
  }

  override handle_read(): void {
    const data = this.recv(LARGE.length);
    this.received += data.length;
    if (this.echo && data.length > 0) this.send(data);
  }
}

const map: SocketMap = new Map();
const [[left, right], [rawLeft, rawRight]] = await connectedPairs(2) as [
  [Deno.TcpConn, Deno.TcpConn],
  [Deno.TcpConn, Deno.TcpConn],
];
const sender = new Peer(left, map);
const receiver = new Peer(right, map);
// The raw pair gets Nagle off too, as every channel does.
rawLeft.setNoDelay(true);
rawRight.setNoDelay(true);
const rawBuffer = new Uint8Array(LARGE.length);
// deno bench has no teardown hook: close everything when the module ends.
globalThis.addEventListener("unload", () => {
  close_all(map);
  rawLeft.close();
  rawRight.close();
});

async function until(peer: Peer, total: number): Promise<void> {
  for (let i = 0; i < MAX_PASSES && peer.received < total; i++) {
    await poll(1, map);
  }
  if (peer.received < total) {
    throw new Error(
      `Cannot finish the exchange: ${peer.received} of ${total} bytes arrived`,
    );
  }
}

async function readExactly(conn: Deno.Conn, size: number): Promise<void> {
  let got = 0;
  while (got < size) {
    const n = await conn.read(rawBuffer.subarray(got, size));
    if (n === null) throw new Error("Cannot read: the peer closed");
    got += n;
  }
}

async function oneWay(data: Uint8Array): Promise<void> {
  receiver.echo = false;
  const total = receiver.received + data.length;
  sender.send(data);
  await until(receiver, total);
}

async function rawOneWay(data: Uint8Array): Promise<void> {
  await Promise.all([
    writeAll(rawLeft, data),
    readExactly(rawRight, data.length),
  ]);
}

Deno.bench({
  name: "raw Deno: write 64 B, read it on the peer",
  group: "64 B one way",
  baseline: true,
  async fn() {
    await rawOneWay(SMALL);
  },
});

Deno.bench({
  name: "asyncore: send() 64 B, recv() it on the peer",
  group: "64 B one way",
  async fn() {
    await oneWay(SMALL);
  },
});

Deno.bench({
  name: "raw Deno: write 64 KiB, read it on the peer",
  group: "64 KiB one way",
  baseline: true,
  async fn() {
    await rawOneWay(LARGE);
  },
});

Deno.bench({
  name: "asyncore: send() 64 KiB, recv() it on the peer",
  group: "64 KiB one way",
  async fn() {
    await oneWay(LARGE);
  },
});

Deno.bench({
  name: "raw Deno: 64 B echo round trip",
  group: "64 B round trip",
  baseline: true,
  async fn() {
    await writeAll(rawLeft, SMALL);
    await readExactly(rawRight, SMALL.length);
    await writeAll(rawRight, rawBuffer.subarray(0, SMALL.length));
    await readExactly(rawLeft, SMALL.length);
  },
});

Deno.bench({
  name: "asyncore: 64 B echo round trip",
  group: "64 B round trip",
  async fn() {
    receiver.echo = true;
    const total = sender.received + SMALL.length;
    sender.send(SMALL);
    await until(sender, total);
  },
});
