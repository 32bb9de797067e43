/**
 * The whole story on one machine, no internet needed: an asyncore HTTP/1.0
 * file server serves a generated page on a free loopback port, the classic
 * `http_client.ts` example fetches it as a separate process, and the demo
 * prints what came back.
 *
 *     deno task demo        (or: deno run -A examples/demo.ts)
 *
 * @module
 */

import { close_all, loop } from "@asyncore/asyncore";
import { HTTPFileServer } from "./_http_file_server.ts";

const root = await Deno.makeTempDir({ prefix: "asyncore-demo-" });
try {
  await Deno.writeTextFile(
    `${root}/index.html`,
    [
      "<!doctype html>",
      "<title>asyncore for Deno</title>",
      "<h1>Hello from asyncore for Deno</h1>",
      `<p>Served by an asyncore Dispatcher on Deno ${Deno.version.deno} ` +
      `at ${new Date().toISOString()}.</p>`,
      "",
    ].join("\n"),
  );

  const server = new HTTPFileServer(root);
  const [host, port] = server.getsockname() as [string, number];
  const url = `http://${host}:${port}/`;
  console.log(`server: asyncore HTTP/1.0 file server listening on ${url}`);
  console.log(`client: deno run -A examples/http_client.ts ${url}\n`);

  // The client runs as its own process, exactly as a user would start it,
  // while this process's loop serves it.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("http_client.ts", import.meta.url).href, url],
    cwd: new URL("..", import.meta.url),
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = new AbortController();
  const output = child.output().finally(() => stop.abort());
  await loop({ signal: stop.signal });
  const { code, stdout } = await output;
  close_all();

  // The response is printed as received, byte for byte.
  for (let n = 0; n < stdout.length;) {
    n += await Deno.stdout.write(stdout.subarray(n));
  }
  if (code !== 0) {
    console.error(`demo: the client exited with code ${code}`);
    Deno.exitCode = 1;
  } else {
    console.log("\ndemo: done, everything closed");
  }
} finally {
  await Deno.remove(root, { recursive: true });
}
