/**
 * The benchmark's `Deno.serve` file server: the same per-request work as
 * `examples/http_server.ts` (the shared `_http.ts` path resolution, a fresh
 * read of the file, the same fields), on Deno's built-in HTTP server.
 *
 *     deno run -A bench/http/servers/deno_serve.ts PORT DIR [HOST]
 *
 * @module
 */

import {
  CHUNK_BYTES,
  contentType,
  REASONS,
  resolveTarget,
} from "../../../examples/_http.ts";

function status(code: number, extra: Record<string, string> = {}): Response {
  return new Response(`${code} ${REASONS[code]}\n`, {
    status: code,
    headers: {
      ...extra,
      "content-type": "text/plain; charset=utf-8",
      server: "asyncore-deno",
    },
  });
}

async function serveFile(request: Request, root: string): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return status(405, { allow: "GET, HEAD" });
  }
  const url = new URL(request.url);
  const found = resolveTarget(root, url.pathname + url.search);
  if (found.status === 301) return status(301, { location: found.location });
  if (found.status !== 200) return status(found.status);
  const { path, info } = found;
  const headers: Record<string, string> = {
    "content-type": contentType(path),
    "content-length": String(info.size),
    server: "asyncore-deno",
  };
  if (info.mtime) headers["last-modified"] = info.mtime.toUTCString();
  if (request.method === "HEAD") return new Response(null, { headers });
  // Small files in one read, like the asyncore server's first chunk.
  if (info.size <= CHUNK_BYTES) {
    return new Response(Deno.readFileSync(path), { headers });
  }
  const file = await Deno.open(path);
  return new Response(file.readable, { headers });
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 8000);
  const root = Deno.realPathSync(Deno.args[1] ?? ".");
  const hostname = Deno.args[2] ?? "127.0.0.1";
  Deno.serve({
    hostname,
    port,
    onListen: (addr) =>
      console.log(`listening on ${addr.hostname}:${addr.port}`),
  }, (request) => serveFile(request, root));
}
