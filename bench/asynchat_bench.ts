/**
 * Terminator search in `asynchat`: `find_prefix_at_end()` on a full read
 * buffer, and `AsyncChat` splitting real loopback input into CRLF lines and
 * into one long record whose terminator arrives last. The line group has a
 * hand-written split loop over raw `Deno.Conn` reads as its baseline.
 *
 *     deno bench -A bench/asynchat_bench.ts
 *
 * @module
 */

import { close_all, poll, type SocketMap } from "@asyncore/asyncore";
import { AsyncChat, find_prefix_at_end } from "@asyncore/asyncore/asynchat";
import { connectedPairs, writeAll } from "./_pairs.ts";

const CRLF = new Uint8Array([13, 10]);
const LINE = 64;
const LINES = 1024;
const RECORD = 1024 * 1024;
const MAX_PASSES = 100_000;

function filled(size: number, byte: number): Uint8Array {
  return new Uint8Array(size).fill(byte);
}

// 1,024 lines of 62 bytes plus CRLF.
const lines = filled(LINE * LINES, 0x61);
for (let end = LINE; end <= lines.length; end += LINE) {
  lines.set(CRLF, end - 2);
}
// One record of 1 MiB, ending in CRLF: each read is searched and kept whole.
const record = filled(RECORD, 0x62);
record.set(CRLF, RECORD - 2);

/** Counts records and their bytes. */
class Counter extends AsyncChat {
  records = 0;
  bytes = 0;

  override collect_incoming_data(data: Uint8Array): void {
    this.bytes += data.length;
  }

  override found_terminator(): void {
    this.records++;
  }
}

const map: SocketMap = new Map();
const [[feed, chatEnd], [rawFeed, rawEnd]] = await connectedPairs(2) as [
  [Deno.TcpConn, Deno.TcpConn],
  [Deno.TcpConn, Deno.TcpConn],
];
const chat = new Counter(chatEnd, map);
chat.set_terminator(CRLF);
for (const conn of [feed, rawFeed, rawEnd]) conn.setNoDelay(true);
const rawBuffer = new Uint8Array(64 * 1024);
// deno bench has no teardown hook: close everything when the module ends.
globalThis.addEventListener("unload", () => {
  close_all(map);
  for (const conn of [feed, rawFeed, rawEnd]) conn.close();
});

async function receive(records: number): Promise<void> {
  const total = chat.records + records;
  for (let i = 0; i < MAX_PASSES && chat.records < total; i++) {
    await poll(1, map);
  }
  if (chat.records < total) {
    throw new Error(
      `Cannot finish: ${total - chat.records} records did not arrive`,
    );
  }
}

// The baseline: read and split at CRLF by hand, keeping a partial line.
async function rawLines(count: number): Promise<void> {
  let seen = 0;
  let carry = 0;
  while (seen < count) {
    const n = await rawEnd.read(rawBuffer.subarray(carry));
    if (n === null) throw new Error("Cannot read: the peer closed");
    const view = rawBuffer.subarray(0, carry + n);
    let start = 0;
    for (
      let at = view.indexOf(13);
      at !== -1 && at + 1 < view.length;
      at = view.indexOf(13, at + 1)
    ) {
      if (view[at + 1] === 10) {
        seen++;
        start = at + 2;
      }
    }
    rawBuffer.copyWithin(0, start, view.length);
    carry = view.length - start;
  }
}

const needle = new TextEncoder().encode("--boundary-0123456789\r\n");
const haystack = filled(64 * 1024, 0x63);
haystack.set(needle.subarray(0, needle.length - 1), haystack.length - 22);
const crHaystack = filled(64 * 1024, 0x63);
crHaystack[crHaystack.length - 1] = 13;

Deno.bench({
  name: "find_prefix_at_end: 64 KiB ending in CR, CRLF",
  group: "find_prefix_at_end",
  fn() {
    if (find_prefix_at_end(crHaystack, CRLF) !== 1) throw new Error("wrong");
  },
});

Deno.bench({
  name: "find_prefix_at_end: 64 KiB ending in 22 B of a 23 B needle",
  group: "find_prefix_at_end",
  fn() {
    if (find_prefix_at_end(haystack, needle) !== 22) throw new Error("wrong");
  },
});

Deno.bench({
  name: "raw Deno: read and split 1,024 CRLF lines of 64 B",
  group: "lines",
  baseline: true,
  async fn() {
    await Promise.all([writeAll(rawFeed, lines), rawLines(LINES)]);
  },
});

Deno.bench({
  name: "AsyncChat: split 1,024 CRLF lines of 64 B",
  group: "lines",
  async fn() {
    await Promise.all([writeAll(feed, lines), receive(LINES)]);
  },
});

Deno.bench({
  name: "AsyncChat: one 1 MiB record ending in CRLF",
  group: "record",
  async fn() {
    await Promise.all([writeAll(feed, record), receive(1)]);
  },
});
