/**
 * The benchmark's baseline: HTTP/1.1 keep-alive on bare `Deno.listen`, one
 * async read/parse/write loop per connection, with the same per-request work
 * as `examples/http_server.ts` (the shared `_http.ts` parser, path
 * resolution and response heads, a fresh read of the file).
 *
 *     deno run -A bench/http/servers/raw_deno.ts PORT DIR [HOST]
 *
 * @module
 */

import {
  fileHead,
  HttpError,
  MAX_HEAD_BYTES,
  parseRequestHead,
  type RequestHead,
  resolveTarget,
  statusResponse,
} from "../../../examples/_http.ts";

const latin1 = new TextDecoder("latin1");

function headEnd(buf: Uint8Array, used: number): number {
  for (let i = 3; i < used; i++) {
    if (
      buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 &&
      buf[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let sent = 0; sent < data.length;) {
    sent += await conn.write(data.subarray(sent));
  }
}

function respond(request: RequestHead, root: string): Uint8Array {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return statusResponse(405, request, { Allow: "GET, HEAD" });
  }
  const found = resolveTarget(root, request.target);
  if (found.status === 301) {
    return statusResponse(301, request, { Location: found.location });
  }
  if (found.status !== 200) return statusResponse(found.status, request);
  const head = fileHead(found.path, found.info, request);
  if (request.method === "HEAD") return head;
  // The benchmark serves one small file: read it whole each time.
  const body = Deno.readFileSync(found.path).subarray(0, found.info.size);
  const response = new Uint8Array(head.length + body.length);
  response.set(head);
  response.set(body, head.length);
  return response;
}

async function serve(conn: Deno.TcpConn, root: string): Promise<void> {
  conn.setNoDelay(true);
  const buf = new Uint8Array(MAX_HEAD_BYTES + 4);
  let used = 0;
  try {
    while (true) {
      let end = headEnd(buf, used);
      while (end === -1) {
        if (used === buf.length) {
          await writeAll(conn, statusResponse(431, null));
          return;
        }
        const n = await conn.read(buf.subarray(used));
        if (n === null) return;
        used += n;
        end = headEnd(buf, used);
      }
      const text = latin1.decode(buf.subarray(0, end - 4));
      buf.copyWithin(0, end, used);
      used -= end;
      let request: RequestHead | null;
      try {
        request = parseRequestHead(text);
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        await writeAll(conn, statusResponse(error.status, null));
        return;
      }
      if (request === null) continue;
      // Drop the body (this server takes no uploads).
      let body = request.contentLength;
      const dropped = Math.min(body, used);
      buf.copyWithin(0, dropped, used);
      used -= dropped;
      body -= dropped;
      while (body > 0) {
        const n = await conn.read(buf);
        if (n === null) return;
        const take = Math.min(n, body);
        buf.copyWithin(0, take, n);
        used = n - take;
        body -= take;
      }
      await writeAll(conn, respond(request, root));
      if (!request.keepAlive) return;
    }
  } catch {
    // a reset connection: nothing to answer
  } finally {
    conn.close();
  }
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 8000);
  const root = Deno.realPathSync(Deno.args[1] ?? ".");
  const hostname = Deno.args[2] ?? "127.0.0.1";
  const listener = Deno.listen({ hostname, port });
  console.log(`listening on ${listener.addr.hostname}:${listener.addr.port}`);
  for await (const conn of listener) serve(conn, root);
}
