/**
 * The slow-consumer probe (issue 8, item 2): a client that sends but never
 * reads, against the echo server or the chat server, while a healthy client
 * keeps going. Reports the server's RSS (from `/proc`, so Linux only) and,
 * for the echo server, the healthy client's round trips.
 *
 *     deno run -A bench/stalled_reader.ts [echo|chat] [SECONDS] [ROOT]
 *
 * `echo` (the default) runs the benchmark's echo server, `bench/echo_server.ts`
 * (`examples/echo_server.ts` in a checkout from before it moved there): the
 * stalled client writes 64 KiB blocks as fast as
 * the server takes them; the healthy one does 100-byte ping-pong. `chat`: a
 * member never reads while another floods the room with 1000-byte lines and
 * a third reads everything. SECONDS defaults to 10; ROOT is the checkout
 * whose examples run (default this one), so an older version can be probed
 * the same way.
 *
 * @module
 */

const [
  kind = "echo",
  seconds = "10",
  root = new URL("..", import.meta.url)
    .pathname,
] = Deno.args;
if (kind !== "echo" && kind !== "chat") {
  console.error("usage: stalled_reader.ts [echo|chat] [SECONDS] [ROOT]");
  Deno.exit(2);
}

function serverScript(): string {
  if (kind === "chat") return `${root}/examples/chat_server.ts`;
  const moved = `${root}/bench/echo_server.ts`;
  try {
    Deno.statSync(moved);
    return moved;
  } catch {
    return `${root}/examples/echo_server.ts`;
  }
}

const server = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", serverScript(), "0"],
  cwd: root,
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const output = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
let first = "";
while (!first.includes("\n")) {
  const { value, done } = await output.read();
  if (done) throw new Error("the server exited before listening");
  first += value;
}
const port = Number(/:(\d+)\n/.exec(first)![1]);

function rssMiB(): number {
  const status = Deno.readTextFileSync(`/proc/${server.pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Reads `conn` to the end, counting bytes, ignoring a reset. */
async function drain(conn: Deno.Conn): Promise<number> {
  const buf = new Uint8Array(64 * 1024);
  let total = 0;
  try {
    for (let n; (n = await conn.read(buf)) !== null;) total += n;
  } catch {
    // closed at the end of the probe
  }
  return total;
}

const connect = () => Deno.connect({ hostname: "127.0.0.1", port });
const mib = (bytes: number) => +(bytes / 2 ** 20).toFixed(1);
const rssStart = rssMiB();
let rssMax = rssStart;
const end = performance.now() + Number(seconds) * 1000;
const stalled = await connect();
const conns = [stalled];
const result: Record<string, unknown> = { kind, seconds: Number(seconds) };

if (kind === "echo") {
  let sent = 0;
  let writing = true;
  (async () => {
    const block = new Uint8Array(64 * 1024);
    try {
      while (writing) sent += await stalled.write(block);
    } catch {
      // closed at the end of the probe
    }
  })();
  const healthy = await connect();
  conns.push(healthy);
  healthy.setNoDelay(true);
  const ping = new Uint8Array(100).fill(0x41);
  const pong = new Uint8Array(100);
  const rtts: number[] = [];
  let sample = 0;
  while (performance.now() < end) {
    const start = performance.now();
    await healthy.write(ping);
    for (let got = 0; got < pong.length;) {
      got += (await healthy.read(pong.subarray(got))) ?? pong.length;
    }
    rtts.push(performance.now() - start);
    if (performance.now() > sample) {
      rssMax = Math.max(rssMax, rssMiB());
      sample = performance.now() + 200;
    }
  }
  writing = false;
  rtts.sort((a, b) => a - b);
  const at = (q: number) =>
    +rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))]!.toFixed(2);
  Object.assign(result, {
    stalledSentMiB: mib(sent),
    roundTrips: rtts.length,
    p50ms: at(0.5),
    p99ms: at(0.99),
    maxms: +rtts.at(-1)!.toFixed(2),
  });
} else {
  const reader = await connect();
  const talker = await connect();
  conns.push(reader, talker);
  const received = drain(reader);
  const ignored = drain(talker);
  const line = new TextEncoder().encode("x".repeat(1000) + "\n");
  const block = new Uint8Array(line.length * 64);
  for (let i = 0; i < 64; i++) block.set(line, i * line.length);
  let sent = 0;
  while (performance.now() < end) {
    sent += await talker.write(block);
    rssMax = Math.max(rssMax, rssMiB());
  }
  const rssEnd = rssMiB();
  for (const conn of conns) conn.close();
  Object.assign(result, {
    floodMiB: mib(sent),
    readerMiB: mib(await received),
    rssEndMiB: +rssEnd.toFixed(1),
  });
  await ignored;
}
Object.assign(result, {
  rssStartMiB: +rssStart.toFixed(1),
  rssMaxMiB: +rssMax.toFixed(1),
});
if (kind === "echo") {
  result.rssEndMiB = +rssMiB().toFixed(1);
  for (const conn of conns) conn.close();
}
console.log(JSON.stringify(result));
server.kill("SIGTERM");
await server.status;
await output.cancel();
