// A yield that is sure to let the OS poller run. Deno runs on tokio's
// current_thread scheduler, which asks epoll for new I/O only when it parks or
// every 61 ticks while busy; a pending setImmediate keeps it busy, so a chain
// of them can go thousands of turns without one completed read reaching
// JavaScript. Awaiting a read that only epoll can complete makes the runtime
// park: one byte sent across a private loopback connection and read back
// (~14 µs) delivers every read that had already arrived.

import { closeQuietly, ignore } from "./_quiet.ts";

/** The private connection: `[writer, reader]`. */
type Pair = [Deno.Conn, Deno.Conn];

const BYTE = new Uint8Array(1);
const sink = new Uint8Array(64);

/** `undefined`: not tried yet; `null`: unavailable (no net permission). */
let pair: Promise<Pair | null> | undefined;
/** The pair once open, so closeKick() can close it at once. */
let opened: Pair | null = null;
/** The kick in flight, shared by every loop that asks meanwhile. */
let inFlight: Promise<void> | null = null;

async function open(): Promise<Pair | null> {
  const permission = Deno.permissions.querySync?.({
    name: "net",
    host: "127.0.0.1",
  });
  if (permission?.state !== "granted") return null;
  let listener: Deno.Listener | undefined;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    const [reader, writer] = await Promise.all([
      listener.accept(),
      Deno.connect({ hostname: "127.0.0.1", port }),
    ]);
    writer.setNoDelay(true);
    return [writer, reader];
  } catch {
    return null;
  } finally {
    listener?.close();
  }
}

function immediate(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// A kick with no pair open: opens it first (or learns it cannot).
async function openAndKick(): Promise<void> {
  const current = pair ??= open();
  const conns = await current;
  if (pair !== current) closeAll(conns); // closeKick() came while it opened
  else opened = conns;
  if (opened === null) {
    // No permission for the loopback pair: a plain macrotask still lets the
    // op driver run, if not epoll.
    return immediate();
  }
  return roundTrip(opened);
}

// A kick runs once every few passes of a busy loop, so it stays lean: the
// write (a byte on loopback, never blocked) is not awaited, only the read.
// A failure means closeKick() closed the pair mid-flight: the yield has
// happened all the same.
function roundTrip([writer, reader]: Pair): Promise<void> {
  writer.write(BYTE).catch(ignore);
  return reader.read(sink).then(ignore, ignore);
}

function done(): void {
  inFlight = null;
}

/** Yields until the OS poller has run once (see the file comment). */
export function kick(): Promise<void> {
  if (inFlight !== null) return inFlight;
  const yielded = opened !== null ? roundTrip(opened) : openAndKick();
  inFlight = yielded;
  yielded.then(done);
  return yielded;
}

/** Closes the private connection; the next kick opens a new one. */
export function closeKick(): void {
  pair = undefined;
  closeAll(opened);
  opened = null;
}

function closeAll(conns: Pair | null): void {
  for (const conn of conns ?? []) closeQuietly(conn);
}
