/**
 * The baseline of the benchmark suite: an echo server written the idiomatic
 * way on Deno's own API, one read/write loop per connection with a 64 KiB
 * buffer. Same command line as `bench/echo_server.ts`:
 *
 *     deno run -A bench/raw_deno_echo.ts [--workers N] [PORT] [HOST]
 *
 * PORT defaults to 8007 (0 picks a free port), HOST to 127.0.0.1. Prints
 * `listening on HOST:PORT` once bound. `--workers N` runs N processes that
 * share the port, as the example's option does.
 *
 * @module
 */

import { poolArgs, runPool, sharedListener } from "../examples/_workers.ts";

const BUFFER_SIZE = 64 * 1024;

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await conn.write(data.subarray(offset));
  }
}

async function echo(conn: Deno.TcpConn): Promise<void> {
  // The project's channels turn Nagle off too, so the ratio measures the
  // event loop, not TCP's coalescing.
  conn.setNoDelay(true);
  const buffer = new Uint8Array(BUFFER_SIZE);
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      await writeAll(conn, buffer.subarray(0, n));
    }
  } catch {
    // A reset peer ends its connection, nothing else.
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

if (import.meta.main) {
  const { workers, workerPort, args } = poolArgs(Deno.args);
  const port = Number(args[0] ?? 8007);
  const hostname = args[1] ?? "127.0.0.1";
  if (workers > 1) await runPool(import.meta.url, args, workers, port);
  const listener = workerPort === null
    ? Deno.listen({ hostname, port, tcpBacklog: 1024 })
    : sharedListener(hostname, workerPort);
  console.log(`listening on ${listener.addr.hostname}:${listener.addr.port}`);
  // Exit through Deno (not the default signal death) so --cpu-prof is written.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => Deno.exit(0));
  }
  for await (const conn of listener) echo(conn);
}
