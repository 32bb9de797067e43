/**
 * The baseline of the benchmark suite: an echo server written the idiomatic
 * way on Deno's own API, one read/write loop per connection with a 64 KiB
 * buffer. Same command line as `examples/echo_server.ts`:
 *
 *     deno run -A bench/raw_deno_echo.ts [PORT] [HOST]
 *
 * PORT defaults to 8007 (0 picks a free port), HOST to 127.0.0.1. Prints
 * `listening on HOST:PORT` once bound.
 *
 * @module
 */

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
  const port = Number(Deno.args[0] ?? 8007);
  const hostname = Deno.args[1] ?? "127.0.0.1";
  const listener = Deno.listen({ hostname, port, tcpBacklog: 1024 });
  console.log(`listening on ${listener.addr.hostname}:${listener.addr.port}`);
  // Exit through Deno (not the default signal death) so --cpu-prof is written.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => Deno.exit(0));
  }
  for await (const conn of listener) echo(conn);
}
