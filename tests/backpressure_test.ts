// Output with a limit (issue 8, item 2): queued sends cost O(1) each, the
// echo server stops reading from a client that does not read its echoes, and
// the chat server drops a member whose queue passes its cap. Byte counts, not
// timings, are asserted.

import assert from "node:assert/strict";
import { AsyncChat, DispatcherWithSend, socket_map } from "../mod.ts";
import { EchoHandler, EchoServer, HIGH_WATER } from "../bench/echo_server.ts";
import {
  closing,
  loopbackPair,
  loopUntil,
  portOf,
  readAll,
} from "./_helpers.ts";

const MiB = 1024 * 1024;
/** The most one handle_read() of the echo server queues past its mark. */
const ONE_RECV = 64 * 1024;

// Piece `i` of the stream: a pattern that changes with every send, so a
// piece lost, repeated or out of order shows.
function fill(piece: Uint8Array, i: number): Uint8Array {
  for (let j = 0; j < piece.length; j++) piece[j] = (i * 7 + j * 31) & 0xff;
  return piece;
}

Deno.test("DispatcherWithSend delivers 100,000 queued sends in order without recopying the queue", async () => {
  using _cleanup = closing();
  const [server, client] = await loopbackPair();
  const sender = new DispatcherWithSend(server);
  const sends = 100_000;
  const piece = new Uint8Array(256);
  // A bound on a hang: copying the whole pending buffer on each send (what
  // this guards against) makes these sends copy ~1.3 TB, which never ends.
  const giveUp = performance.now() + 60_000;
  for (let i = 0; i < sends; i++) {
    // The same array each time: the sender must keep its own copy.
    assert.equal(sender.send(fill(piece, i)), piece.length);
    if (i % 1000 === 0) {
      assert.ok(performance.now() < giveUp, `gave up after ${i} sends`);
    }
  }
  assert.equal(sender.bufferedAmount, sends * piece.length);
  assert.ok(sender.out_buffer.length > 0, "the peer has not read yet");
  const received = readAll(client);
  await loopUntil(() => sender.bufferedAmount === 0, {
    what: "every byte is written",
  });
  sender.close();
  const data = await received;
  assert.equal(data.length, sends * piece.length);
  for (let i = 0; i < sends; i++) {
    const at = i * piece.length;
    assert.deepEqual(data.subarray(at, at + piece.length), fill(piece, i));
  }
});

Deno.test("echo server: a client that never reads holds bounded memory and others keep their echo", async () => {
  using _cleanup = closing();
  const server = new EchoServer("127.0.0.1", 0);
  const port = portOf(server.getsockname());
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port });
  // Sends until the server stops taking bytes (or a limit far above what the
  // kernel buffers and the high-water mark can hold), never reads.
  const limit = 256 * MiB;
  let written = 0;
  const writing = (async () => {
    const block = new Uint8Array(64 * 1024);
    try {
      while (written < limit) written += await stalled.write(block);
    } catch {
      // closed at the end of the test
    }
  })();
  const handlerOf = (): EchoHandler | undefined =>
    [...socket_map.values()].find((d) => d instanceof EchoHandler);
  await loopUntil(() => handlerOf()?.readable() === false || written >= limit, {
    limit: 30,
    what: "the stalled client's handler stops reading",
  });
  const handler = handlerOf()!;
  assert.ok(written < limit, `the server took all ${written} bytes`);
  assert.ok(
    handler.bufferedAmount <= HIGH_WATER + ONE_RECV,
    `${handler.bufferedAmount} bytes pending`,
  );

  // Another client's echo still works, round trip after round trip.
  const healthy = await Deno.connect({ hostname: "127.0.0.1", port });
  const talking = (async () => {
    const buf = new Uint8Array(64);
    for (let i = 0; i < 50; i++) {
      const ping = new TextEncoder().encode(`ping ${i}`);
      await healthy.write(ping);
      let got = 0;
      while (got < ping.length) {
        got += (await healthy.read(buf.subarray(got))) ?? ping.length;
      }
      assert.deepEqual(buf.subarray(0, ping.length), ping);
    }
    return true;
  })();
  let talked = false;
  talking.then(() => talked = true, () => talked = true);
  await loopUntil(() => talked, { what: "50 echoes reach the healthy client" });
  assert.equal(await talking, true);
  // Still bounded: while it is over the mark, the handler reads nothing.
  assert.ok(handler.bufferedAmount <= HIGH_WATER + ONE_RECV);
  assert.equal(handler.readable(), false);

  healthy.close();
  stalled.close();
  await writing;
  await loopUntil(() => socket_map.size === 1, { what: "both handlers close" });
  server.close();
});

Deno.test("DispatcherWithSend queues nothing after close()", async () => {
  using _cleanup = closing();
  const [server, client] = await loopbackPair();
  client.close();
  let closes = 0;
  class Sender extends DispatcherWithSend {
    override handle_close(): void {
      closes++;
    }
  }
  const sender = new Sender(server);
  sender.close();
  // A broadcast that still holds a closed channel must not grow its queue.
  for (let i = 0; i < 100; i++) {
    assert.equal(sender.send(new Uint8Array(1024)), 0);
  }
  assert.equal(sender.bufferedAmount, 0);
  assert.equal(sender.out_buffer.length, 0);
  assert.equal(closes, 100);
});

Deno.test("AsyncChat.push() queues nothing after close()", async () => {
  using _cleanup = closing();
  const [server, client] = await loopbackPair();
  client.close();
  const chat = new AsyncChat(server);
  chat.close();
  for (let i = 0; i < 100; i++) chat.push(new Uint8Array(1024));
  assert.equal(chat.bufferedAmount, 0);
  assert.equal(chat.producer_fifo.length, 0);
});
