// End-to-end tests of examples/http_server.ts, run as a user runs it (a
// subprocess on a free port) and driven by clients nobody here wrote: curl,
// Python's http.client and urllib. Raw sockets cover what those clients
// refuse to send: pipelining, malformed requests and unnormalised `..`.

import assert from "node:assert/strict";

const SERVER = new URL("../examples/http_server.ts", import.meta.url).pathname;
const SECRET = "TOP SECRET, outside the served directory";
const HELLO = "hello, world\n";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---- a served directory with a file outside it and symlinks that lead out

interface Site {
  base: string;
  root: string;
  big: Uint8Array;
}

function pseudoRandom(size: number): Uint8Array {
  const data = new Uint8Array(size);
  let x = 2463534242;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return data;
}

async function makeSite(): Promise<Site> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "http-" }));
  const root = `${base}/www`;
  await Deno.mkdir(`${root}/sub`, { recursive: true });
  await Deno.mkdir(`${root}/empty`);
  await Deno.writeTextFile(`${base}/secret.txt`, SECRET);
  await Deno.writeTextFile(`${root}/hello.txt`, HELLO);
  await Deno.writeTextFile(`${root}/index.html`, "<h1>root</h1>\n");
  await Deno.writeTextFile(`${root}/sub/index.html`, "<h1>sub</h1>\n");
  await Deno.writeTextFile(`${root}/a b.txt`, "spaced\n");
  // 3 MiB and a few bytes: many chunks, and not a multiple of the chunk size.
  const big = pseudoRandom(3 * 1024 * 1024 + 5);
  await Deno.writeFile(`${root}/big.bin`, big);
  await Deno.symlink(`${base}/secret.txt`, `${root}/escape`);
  await Deno.symlink(base, `${root}/linkdir`);
  await Deno.symlink(`${root}/hello.txt`, `${root}/inner-link.txt`);
  return { base, root, big };
}

// ---- the server as a subprocess

interface Server {
  port: number;
  /** The server's process id. */
  pid: number;
  /** Sends SIGTERM, checks the exit code and returns all stdout/stderr. */
  stop(): Promise<string>;
}

async function startServer(
  root: string,
  flags: string[] = [],
): Promise<Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, "0", root, ...flags],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) {
      await child.status;
      throw new Error(`The server exited before listening: ${await stderr}`);
    }
    seen += value;
  }
  const match = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(seen);
  assert.ok(match, `unexpected first output: ${seen}`);
  const rest = (async () => {
    let text = seen.slice(match[0].length);
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      text += r.value;
    }
    return text;
  })();
  return {
    port: Number(match[1]),
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      const status = await child.status;
      const output = (await rest) + (await stderr);
      assert.equal(status.code, 0, `exit code ${status.code}: ${output}`);
      return output;
    },
  };
}

/** Runs `body` against a fresh site and server; the server must log nothing. */
async function withServer(
  body: (server: Server, site: Site) => Promise<void>,
  flags: string[] = [],
): Promise<void> {
  const site = await makeSite();
  const server = await startServer(site.root, flags);
  try {
    await body(server, site);
  } finally {
    const output = await server.stop();
    await Deno.remove(site.base, { recursive: true });
    assert.equal(output, "", "the server logged something");
  }
}

// ---- a raw HTTP client: sends exactly the bytes given, parses replies

interface Reply {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
}

const DEADLINE_MS = 10_000;

class RawClient {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async open(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    for (let sent = 0; sent < bytes.length;) {
      sent += await this.#conn.write(bytes.subarray(sent));
    }
  }

  // More bytes into the buffer; false at EOF. Bounded, never hangs a test.
  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(65536);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("Timed out waiting for the server")),
        DEADLINE_MS,
      );
    });
    try {
      const n = await Promise.race([this.#conn.read(chunk), deadline]);
      if (n === null) return false;
      const joined = new Uint8Array(this.#buf.length + n);
      joined.set(this.#buf);
      joined.set(chunk.subarray(0, n), this.#buf.length);
      this.#buf = joined;
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) return false;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads one response; `head` for a reply to HEAD (no body). */
  async reply(head = false): Promise<Reply> {
    let end: number;
    while ((end = indexOf(this.#buf, "\r\n\r\n")) === -1) {
      if (!(await this.#fill())) throw new Error("EOF before a response");
    }
    const lines = decoder.decode(this.#buf.subarray(0, end)).split("\r\n");
    const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0]!)?.[1]);
    assert.ok(status, `bad status line: ${lines[0]}`);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers.set(
        line.slice(0, colon).toLowerCase(),
        line.slice(colon + 1).trim(),
      );
    }
    // An interim 1xx response has no body.
    const length = head || status < 200
      ? 0
      : Number(headers.get("content-length"));
    assert.ok(Number.isInteger(length), "every reply has a Content-Length");
    while (this.#buf.length < end + 4 + length) {
      if (!(await this.#fill())) throw new Error("EOF inside a body");
    }
    const body = this.#buf.slice(end + 4, end + 4 + length);
    this.#buf = this.#buf.slice(end + 4 + length);
    return { status, headers, body };
  }

  /** True when the server closed the connection with nothing more sent. */
  async closed(): Promise<boolean> {
    while (await this.#fill()) { /* more bytes: keep reading to the end */ }
    return this.#buf.length === 0;
  }

  [Symbol.dispose](): void {
    this.#conn.close();
  }
}

function indexOf(haystack: Uint8Array, needle: string): number {
  return decoder.decode(haystack).indexOf(needle);
}

function text(reply: Reply): string {
  return decoder.decode(reply.body);
}

async function sha256(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    data as Uint8Array<ArrayBuffer>,
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

function get(path: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`;
}

// ---- raw sockets

Deno.test("the HTTP server answers 408 and closes when a request does not arrive in time", async (t) => {
  const flags = ["--request-timeout", "0.3", "--idle-timeout", "60"];
  await t.step("a head sent a byte at a time (slowloris)", async () => {
    await withServer(async ({ port }) => {
      using client = await RawClient.open(port);
      await client.send("GET /hello.txt HTTP/1.1\r\nHost: test\r\n");
      let answered = false;
      // Each byte is a sign of life, so only the request timeout ends it.
      const dribble = (async () => {
        while (!answered) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          if (!answered) await client.send("X").catch(() => {});
        }
      })();
      try {
        const reply = await client.reply();
        assert.equal(reply.status, 408);
        assert.equal(reply.headers.get("connection"), "close");
      } finally {
        answered = true;
        await dribble;
      }
      assert.equal(await client.closed(), true);
    }, flags);
  });
  await t.step("a request line that never ends", async () => {
    await withServer(async ({ port }) => {
      using client = await RawClient.open(port);
      await client.send("GET /hello.txt");
      assert.equal((await client.reply()).status, 408);
      assert.equal(await client.closed(), true);
    }, flags);
  });
});

Deno.test("the HTTP server closes a keep-alive connection left idle", async () => {
  await withServer(async ({ port }) => {
    using client = await RawClient.open(port);
    await client.send(get("/hello.txt"));
    const reply = await client.reply();
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get("connection"), undefined); // kept open
    assert.equal(await client.closed(), true);
  }, ["--idle-timeout", "0.2"]);
});

Deno.test("the HTTP server answers pipelined requests in order on one connection", async () => {
  await withServer(async ({ port }) => {
    using client = await RawClient.open(port);
    await client.send(
      get("/hello.txt") + "HEAD /hello.txt HTTP/1.1\r\nHost: test\r\n\r\n" +
        get("/sub/") + get("/missing") + get("/big.bin") + get("/"),
    );
    const hello = await client.reply();
    assert.equal(hello.status, 200);
    assert.equal(text(hello), HELLO);
    assert.equal(
      hello.headers.get("content-type"),
      "text/plain; charset=utf-8",
    );
    assert.equal(hello.headers.get("connection"), undefined);
    const head = await client.reply(true);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(HELLO.length));
    assert.equal(text(await client.reply()), "<h1>sub</h1>\n");
    assert.equal((await client.reply()).status, 404);
    const big = await client.reply();
    assert.equal(big.body.length, 3 * 1024 * 1024 + 5);
    assert.equal(text(await client.reply()), "<h1>root</h1>\n");
    // Still open: one more request on the same connection.
    await client.send(get("/hello.txt"));
    assert.equal(text(await client.reply()), HELLO);
  });
});

Deno.test("the HTTP server answers a long pipeline of large and small files in order", async () => {
  await withServer(async ({ port }, { big }) => {
    using client = await RawClient.open(port);
    // More queued responses than the server reads ahead of (16): it must
    // pause reading and resume as the client catches up.
    const paths = Array.from(
      { length: 40 },
      (_, i) => i % 2 ? "/hello.txt" : "/big.bin",
    );
    await client.send(paths.map((path) => get(path)).join(""));
    const hash = await sha256(big);
    for (const path of paths) {
      const reply = await client.reply();
      if (path === "/hello.txt") assert.equal(text(reply), HELLO);
      else assert.equal(await sha256(reply.body), hash);
    }
  });
});

Deno.test("the HTTP server serves files byte-exact, large ones streamed", async () => {
  await withServer(async ({ port }, { big }) => {
    using client = await RawClient.open(port);
    await client.send(
      get("/big.bin") + get("/a%20b.txt") + get("/inner-link.txt"),
    );
    const reply = await client.reply();
    assert.equal(reply.headers.get("content-type"), "application/octet-stream");
    assert.equal(await sha256(reply.body), await sha256(big));
    assert.equal(text(await client.reply()), "spaced\n");
    assert.equal(text(await client.reply()), HELLO);
  });
});

Deno.test("the HTTP server reads and skips a request body before the next request", async () => {
  await withServer(async ({ port }) => {
    using client = await RawClient.open(port);
    await client.send(
      "POST /hello.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\n" +
        "GET / HTTP/" + get("/hello.txt"),
    );
    const refused = await client.reply();
    assert.equal(refused.status, 405);
    assert.equal(refused.headers.get("allow"), "GET, HEAD");
    assert.equal(text(await client.reply()), HELLO);
  });
});

Deno.test("the HTTP server keeps or closes connections as HTTP/1.0 and 1.1 ask", async (t) => {
  await withServer(async ({ port }) => {
    await t.step("HTTP/1.0 closes after the response", async () => {
      using client = await RawClient.open(port);
      await client.send("GET /hello.txt HTTP/1.0\r\n\r\n");
      const reply = await client.reply();
      assert.equal(text(reply), HELLO);
      assert.equal(reply.headers.get("connection"), "close");
      assert.ok(await client.closed());
    });
    await t.step("HTTP/1.0 with keep-alive stays open", async () => {
      using client = await RawClient.open(port);
      await client.send(
        "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      );
      const reply = await client.reply();
      assert.equal(reply.headers.get("connection"), "keep-alive");
      await client.send("HEAD /hello.txt HTTP/1.0\r\n\r\n");
      assert.equal((await client.reply(true)).status, 200);
      assert.ok(await client.closed());
    });
    await t.step(
      "HTTP/1.1 with Connection: close ignores later requests",
      async () => {
        using client = await RawClient.open(port);
        await client.send(
          get("/hello.txt", "Connection: close\r\n") + get("/"),
        );
        const reply = await client.reply();
        assert.equal(reply.headers.get("connection"), "close");
        assert.ok(await client.closed());
      },
    );
  });
});

Deno.test("the HTTP server answers requests whose lines end in bare LF, as Python's http.server does", async (t) => {
  await withServer(async ({ port }) => {
    await t.step("HTTP/1.0, LF only", async () => {
      using client = await RawClient.open(port);
      await client.send("GET /hello.txt HTTP/1.0\n\n");
      assert.equal(text(await client.reply()), HELLO);
      assert.ok(await client.closed());
    });
    await t.step("HTTP/1.1 pipelined, LF and CRLF mixed", async () => {
      using client = await RawClient.open(port);
      await client.send(
        "\nGET /hello.txt HTTP/1.1\nHost: test\n\n" +
          "HEAD /hello.txt HTTP/1.1\r\nHost: test\n\r\n" +
          "GET /sub/ HTTP/1.1\nHost: test\r\nConnection: close\n\n",
      );
      assert.equal(text(await client.reply()), HELLO);
      assert.equal((await client.reply(true)).status, 200);
      assert.equal(text(await client.reply()), "<h1>sub</h1>\n");
      assert.ok(await client.closed());
    });
  });
});

Deno.test("the HTTP server rejects malformed requests and closes", async (t) => {
  const cases: [name: string, request: string, status: number][] = [
    ["a request line without a version", "GET /hello.txt\r\n\r\n", 400],
    ["a garbage request line", "HELLO\r\n\r\n", 400],
    ["a space in the target", "GET /a b.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["a header without a colon", get("/", "Oops\r\n"), 400],
    ["a space before the colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400],
    ["a folded header line", get("/", "X-A: 1\r\n folded\r\n"), 400],
    ["HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400],
    ["a negative Content-Length", get("/", "Content-Length: -1\r\n"), 400],
    [
      "conflicting Content-Lengths",
      get("/", "Content-Length: 1\r\nContent-Length: 2\r\n"),
      400,
    ],
    ["a chunked body", get("/", "Transfer-Encoding: chunked\r\n"), 501],
    ["HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505],
    ["a body over 1 MiB", get("/", "Content-Length: 2000000\r\n"), 413],
    ["a head over 16 KiB", get("/", "X-Pad: 1234567890\r\n".repeat(1200)), 431],
  ];
  await withServer(async ({ port }) => {
    for (const [name, request, status] of cases) {
      await t.step(`${name} gets ${status}`, async () => {
        using client = await RawClient.open(port);
        await client.send(request);
        const reply = await client.reply();
        assert.equal(reply.status, status);
        assert.equal(reply.headers.get("connection"), "close");
        assert.ok(await client.closed());
      });
    }
  });
});

Deno.test("the HTTP server never serves a file outside its directory", async (t) => {
  const targets = [
    "/../secret.txt",
    "/sub/../../secret.txt",
    "//../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub%2f..%2f..%2fsecret.txt",
    "/..%5csecret.txt",
    "/hello.txt%00",
    "/escape",
    "/linkdir/secret.txt",
    "http://test/../secret.txt",
  ];
  await withServer(async ({ port }) => {
    for (const target of targets) {
      await t.step(`GET ${target} is refused`, async () => {
        using client = await RawClient.open(port);
        await client.send(get(target));
        const reply = await client.reply();
        assert.ok(
          reply.status === 403 || reply.status === 404,
          `status ${reply.status}`,
        );
        assert.ok(!text(reply).includes(SECRET));
      });
    }
  });
});

Deno.test("the HTTP server maps directories to index.html and keeps the connection on path errors", async () => {
  await withServer(async ({ port }) => {
    using client = await RawClient.open(port);
    await client.send(
      get("/sub?x=1") + get("/empty/") + get("/%zz") + get("/sub/"),
    );
    const moved = await client.reply();
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.get("location"), "/sub/?x=1");
    assert.equal((await client.reply()).status, 404);
    const bad = await client.reply();
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get("connection"), undefined);
    assert.equal(text(await client.reply()), "<h1>sub</h1>\n");
  });
});

// The files a process holds open, by path (Linux), or null without /proc.
function openFiles(pid: number): string[] | null {
  const dir = `/proc/${pid}/fd`;
  try {
    return [...Deno.readDirSync(dir)].map((entry) => {
      try {
        return Deno.readLinkSync(`${dir}/${entry.name}`);
      } catch {
        return ""; // closed while we looked
      }
    });
  } catch {
    return null;
  }
}

Deno.test("the HTTP server closes the file when a client leaves mid-download", async () => {
  await withServer(async ({ port, pid }, { root }) => {
    const big = `${root}/big.bin`;
    // Polls (bounded) until the server does or does not hold big.bin open.
    const holdsBig = async (wanted: boolean) => {
      let files = openFiles(pid);
      for (let i = 0; i < 500 && files?.includes(big) !== wanted; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        files = openFiles(pid);
      }
      return files === null ? wanted : files.includes(big);
    };
    {
      using client = await RawClient.open(port);
      // More than the socket buffers hold, so the server must wait for us.
      await client.send(get("/big.bin").repeat(10));
      const head = await client.reply(true);
      assert.equal(head.status, 200);
      assert.equal(await holdsBig(true), true, "big.bin is being streamed");
    }
    assert.equal(await holdsBig(false), false, "big.bin left open");
    using client = await RawClient.open(port);
    await client.send(get("/hello.txt"));
    assert.equal(text(await client.reply()), HELLO);
  });
});

Deno.test("the HTTP server answers Expect: 100-continue before reading the body", async () => {
  await withServer(async ({ port }) => {
    using client = await RawClient.open(port);
    await client.send(
      "POST /hello.txt HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n" +
        "Content-Length: 5\r\n\r\n",
    );
    assert.equal((await client.reply()).status, 100);
    await client.send("hello" + get("/hello.txt"));
    assert.equal((await client.reply()).status, 405);
    assert.equal(text(await client.reply()), HELLO);
  });
});

// ---- curl

async function run(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string } | null> {
  try {
    const out = await new Deno.Command(cmd, { args }).output();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

const hasCurl = (await run("curl", ["--version"])) !== null;
if (!hasCurl) console.log("skipping curl tests: curl is not installed");

Deno.test({
  name: "curl downloads, HEADs, reuses connections and sees error statuses",
  ignore: !hasCurl,
  fn: async (t) => {
    await withServer(async ({ port }, { base, big }) => {
      const url = `http://127.0.0.1:${port}`;
      const curl = async (...args: string[]) => {
        const out = await run("curl", ["-sS", ...args]);
        assert.equal(out?.code, 0, out?.stderr);
        return out!.stdout;
      };
      await t.step("a multi-MiB GET is byte-exact", async () => {
        const file = `${base}/download`;
        const info = await curl(
          "-o",
          file,
          "-w",
          "%{http_code} %{content_type}",
          `${url}/big.bin`,
        );
        assert.equal(info, "200 application/octet-stream");
        assert.equal(
          await sha256(await Deno.readFile(file)),
          await sha256(big),
        );
      });
      await t.step("HEAD gives the length and no body", async () => {
        const headers = await curl("-I", `${url}/hello.txt`);
        assert.match(headers, /^HTTP\/1\.1 200 OK\r\n/);
        assert.match(headers, /\r\nContent-Length: 13\r\n/);
        assert.match(
          headers,
          /\r\nContent-Type: text\/plain; charset=utf-8\r\n/,
        );
      });
      await t.step("three URLs share one connection", async () => {
        const out = await curl(
          "-o",
          "/dev/null",
          "-o",
          "/dev/null",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}:%{num_connects}\n",
          `${url}/hello.txt`,
          `${url}/`,
          `${url}/sub/`,
        );
        assert.equal(out, "200:1\n200:0\n200:0\n");
      });
      await t.step("404, 405 with Allow, and an unnormalised ..", async () => {
        assert.equal(
          await curl("-o", "/dev/null", "-w", "%{http_code}", `${url}/nope`),
          "404",
        );
        const refused = await curl("-i", "-X", "DELETE", `${url}/hello.txt`);
        assert.match(refused, /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
        assert.match(refused, /\r\nAllow: GET, HEAD\r\n/);
        const escaped = await curl(
          "--path-as-is",
          "-w",
          " %{http_code}",
          `${url}/../secret.txt`,
        );
        assert.match(escaped, / 40[34]$/);
        assert.ok(!escaped.includes(SECRET));
      });
    });
  },
});

// ---- Python's http.client and urllib

const hasPython = (await run("python3", ["--version"])) !== null;
if (!hasPython) console.log("skipping Python tests: python3 is not installed");

const PYTHON_CLIENT = `
import hashlib, http.client, json, sys, urllib.error, urllib.request
port = int(sys.argv[1])
out = {}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
socks = []
def ask(method, path, body=None):
    conn.request(method, path, body=body)
    r = conn.getresponse()
    data = r.read()
    socks.append(id(conn.sock))
    return r, data
r, data = ask("GET", "/hello.txt")
out["get"] = [r.status, r.getheader("Content-Type"), data.decode()]
r, data = ask("HEAD", "/hello.txt")
out["head"] = [r.status, r.getheader("Content-Length"), len(data)]
r, data = ask("GET", "/missing")
out["missing"] = r.status
r, data = ask("POST", "/hello.txt", body=b"x" * 1000)
out["post"] = [r.status, r.getheader("Allow")]
r, data = ask("GET", "/big.bin")
out["big"] = [r.status, len(data), hashlib.sha256(data).hexdigest()]
out["one_connection"] = len(set(socks)) == 1 and conn.sock is not None
conn.close()
old = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
old._http_vsn, old._http_vsn_str = 10, "HTTP/1.0"
old.request("GET", "/hello.txt")
r = old.getresponse()
out["http10"] = [r.version, r.will_close, r.read().decode()]
old.close()
with urllib.request.urlopen(f"http://127.0.0.1:{port}/big.bin", timeout=10) as r:
    data = r.read()
out["urllib"] = [r.status, len(data), hashlib.sha256(data).hexdigest()]
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/sub/../../secret.txt", timeout=10)
    out["urllib_escape"] = 200
except urllib.error.HTTPError as e:
    out["urllib_escape"] = e.code
print(json.dumps(out))
`;

Deno.test({
  name: "Python's http.client and urllib talk to the HTTP server",
  ignore: !hasPython,
  fn: async () => {
    await withServer(async ({ port }, { big }) => {
      const out = await run("python3", ["-c", PYTHON_CLIENT, String(port)]);
      assert.equal(out?.code, 0, out?.stderr);
      const result = JSON.parse(out!.stdout);
      const hash = await sha256(big);
      assert.deepEqual(result.get, [200, "text/plain; charset=utf-8", HELLO]);
      assert.deepEqual(result.head, [200, String(HELLO.length), 0]);
      assert.equal(result.missing, 404);
      assert.deepEqual(result.post, [405, "GET, HEAD"]);
      assert.deepEqual(result.big, [200, big.length, hash]);
      assert.equal(result.one_connection, true);
      assert.deepEqual(result.http10, [11, true, HELLO]);
      assert.deepEqual(result.urllib, [200, big.length, hash]);
      // urllib normalises nothing either: the server must refuse it.
      assert.ok([403, 404].includes(result.urllib_escape));
    });
  },
});
