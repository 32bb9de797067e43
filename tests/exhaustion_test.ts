// Servers that run out of file descriptors, and accept hooks that fail: the
// listener must survive both. The example servers run as subprocesses under
// `ulimit -n 64`, exhausted by real loopback clients.

import assert from "node:assert/strict";
import { Dispatcher, type HookResult, loop } from "../mod.ts";
import {
  bytes,
  closing,
  EchoHandler,
  loopbackPair,
  loopUntil,
  text,
  watchRejections,
  writeAll,
} from "./_helpers.ts";

const ROOT = new URL("..", import.meta.url);
const FD_LIMIT = 64;
// Far more clients than the limit leaves descriptors for.
const CLIENTS = 120;
const BOUND_MS = 15_000;

/** A server example running under a small descriptor limit. */
class LimitedServer implements AsyncDisposable {
  port = 0;
  /** Everything it printed so far, stdout and stderr. */
  output = "";
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<unknown>;

  /** Runs `script` (a path from the repository's root) with `args`. */
  constructor(script: string, args: string[]) {
    this.#child = new Deno.Command("bash", {
      args: [
        "-c",
        `ulimit -n ${FD_LIMIT} && exec "$@"`,
        "bash",
        Deno.execPath(),
        "run",
        "-A",
        new URL(script, ROOT).pathname,
        ...args,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#drained = Promise.all(
      [this.#child.stdout, this.#child.stderr].map(async (stream) => {
        for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
          this.output += chunk;
        }
      }),
    );
  }

  /** Waits until the output matches `pattern`; returns the match. */
  async waitFor(pattern: RegExp, what: string): Promise<RegExpExecArray> {
    await this.until(() => pattern.test(this.output), what);
    return pattern.exec(this.output)!;
  }

  /** Waits until `done()`, which may look at the output, is true. */
  async until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + BOUND_MS;
    while (!done()) {
      assert.ok(
        Date.now() < deadline,
        `gave up waiting until ${what}; output:\n${this.output}`,
      );
      // Output arrives on the stream readers; let them run.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // it already exited
    }
    await this.#child.status;
    await this.#drained;
  }
}

/** Reads from `conn` until the text read so far matches `pattern`. */
async function readUntil(conn: Deno.Conn, pattern: RegExp): Promise<string> {
  const buf = new Uint8Array(4096);
  let seen = "";
  const timer = setTimeout(() => conn.close(), BOUND_MS);
  try {
    while (!pattern.test(seen)) {
      const n = await conn.read(buf);
      if (n === null) break;
      seen += text(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
  return seen;
}

const EXAMPLES: {
  script: string;
  args: string[];
  /** What a served client sees: sends what it must, returns what it read. */
  greet(conn: Deno.Conn): Promise<string>;
  served: RegExp;
}[] = [
  {
    script: "echo_server.ts",
    args: ["0"],
    async greet(conn) {
      await writeAll(conn, bytes("ping\n"));
      return await readUntil(conn, /ping\n/);
    },
    served: /^ping\n$/,
  },
  {
    script: "chat_server.ts",
    args: ["0"],
    greet: (conn) => readUntil(conn, /\n/),
    served: /^welcome, /,
  },
  {
    script: "smtpd/smtpd.ts",
    args: ["--port", "0"],
    greet: (conn) => readUntil(conn, /\r\n/),
    served: /^220 /,
  },
  {
    script: "http_server.ts",
    args: ["0", new URL("examples", ROOT).pathname],
    async greet(conn) {
      await writeAll(conn, bytes("HEAD /echo_server.ts HTTP/1.0\r\n\r\n"));
      return await readUntil(conn, /\r\n\r\n/);
    },
    served: /^HTTP\/1\.1 200 OK\r\n/,
  },
];

Deno.test({
  name:
    "an example server out of file descriptors logs once, keeps its listener and serves the next client",
  // The children are killed and awaited; their pipes are drained.
  fn: async (t) => {
    for (const { script, args, greet, served } of EXAMPLES) {
      await t.step(script, async () => {
        await using server = new LimitedServer(`examples/${script}`, args);
        const [, port] = await server.waitFor(
          /listening on [^\s]+:(\d+)\n/,
          "the server listens",
        );
        const clients: Deno.Conn[] = [];
        try {
          for (let i = 0; i < CLIENTS; i++) {
            clients.push(await Deno.connect({ port: Number(port) }));
          }
          await server.waitFor(
            /Cannot accept: Too many open files/,
            "the server ran out of descriptors",
          );
        } finally {
          for (const conn of clients) conn.close();
        }
        // The clients are gone: a new one is served once the listener's
        // rest ends and the queue of closed ones is worked through.
        using conn = await Deno.connect({ port: Number(port) });
        assert.match(await greet(conn), served);
        const stalls = server.output.match(/Cannot accept: /g) ?? [];
        assert.equal(stalls.length, 1, server.output);
        assert.doesNotMatch(server.output, /uncaptured exception/);
      });
    }
  },
});

/** `deno cache` for `script`, so that its run loads every module from Deno's
 * emit cache: mapping a stack frame then opens a file, which is what needs a
 * free descriptor (a module emitted in the same run is mapped in memory). */
async function cacheEmit(script: string): Promise<void> {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["cache", new URL(script, ROOT).pathname],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(success, text(stderr));
}

/** What a GET of `path` on a new connection reads: the head, or "" on close. */
async function get(port: number, path: string): Promise<string> {
  const conn = await Deno.connect({ port });
  try {
    await writeAll(
      conn,
      bytes(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    return await readUntil(conn, /\r\n\r\n/);
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) return "";
    throw error;
  } finally {
    try {
      conn.close();
    } catch {
      // readUntil's bound closed it
    }
  }
}

const STACK_AT_EMFILE = "tests/fixtures/stack_at_emfile.ts";

Deno.test("a callback that fails with no descriptor free is logged with its traceback (no Deno panic), and the server serves on", async (t) => {
  await cacheEmit(STACK_AT_EMFILE);
  const cases: [byte: string, logged: RegExp][] = [
    [
      "o",
      /uncaptured exception, closing channel <Hog connected [^>]+> \(Error:Too many open files \(os error 24\)[^\n]*\|Hog\.#fail\|/,
    ],
    [
      "t",
      /uncaptured exception, closing channel <Hog connected [^>]+> \(TypeError:Cannot hog: no descriptor is left [^\n]*\|Hog\.#fail\|/,
    ],
  ];
  for (const [byte, logged] of cases) {
    await t.step(
      `a callback failing with ${byte === "o" ? "EMFILE" : "a TypeError"}`,
      async () => {
        await using server = new LimitedServer(STACK_AT_EMFILE, []);
        const [, port] = await server.waitFor(
          /listening on [^\s]+:(\d+)\n/,
          "the server listens",
        );
        {
          using conn = await Deno.connect({ port: Number(port) });
          await writeAll(conn, bytes(byte));
          // Closed without a reply by the default handle_error().
          assert.equal(await readUntil(conn, /./), "");
        }
        await server.waitFor(logged, "the error is logged with its frames");
        using conn = await Deno.connect({ port: Number(port) });
        await writeAll(conn, bytes("e"));
        assert.equal(await readUntil(conn, /e/), "e");
        assert.doesNotMatch(server.output, /panicked/);
      },
    );
  }
});

Deno.test("examples/http_server.ts under ulimit -n 64: file requests while idle clients use up the descriptors get 200 or a close, never a panic, and are served once the idle clients leave", async () => {
  const script = "examples/http_server.ts";
  await cacheEmit(script);
  await using server = new LimitedServer(script, [
    "0",
    new URL("examples", ROOT).pathname,
  ]);
  const port = Number(
    (await server.waitFor(/listening on [^\s]+:(\d+)\n/, "the server listens"))[
      1
    ],
  );
  const FILE = "/echo_server.ts";
  const OK = /^HTTP\/1\.1 200 OK\r\n/;
  assert.match(await get(port, FILE), OK);
  // One more idle client before each request, until accept() runs out: on
  // the way, one request is accepted with the last descriptor, and opening
  // its file fails with EMFILE.
  const STALL = /Cannot accept: Too many open files/;
  const idle: Deno.Conn[] = [];
  const replies: string[] = [];
  try {
    while (idle.length < 80 && !STALL.test(server.output)) {
      idle.push(await Deno.connect({ port }));
      let reply: string | null = null;
      const request = get(port, FILE).then((head) => reply = head);
      await server.until(
        () => reply !== null || STALL.test(server.output),
        "the request is answered or accept() stalls",
      );
      if (reply === null) {
        // Stalled: the request is served once the idle clients leave.
        for (const conn of idle.splice(0)) conn.close();
        await request;
      }
      replies.push(reply!);
    }
  } finally {
    for (const conn of idle) conn.close();
  }
  assert.match(server.output, STALL);
  for (const reply of replies) {
    assert.ok(reply === "" || OK.test(reply), JSON.stringify(reply));
  }
  assert.match(await get(port, FILE), OK);
  assert.doesNotMatch(server.output, /panicked/);
});

type Mode = "throws" | "rejects";

// A listener whose hook fails as `mode` says for the first client only;
// later clients get an echo handler.
class Flaky extends Dispatcher {
  failures = 0;
  logged: string[] = [];
  /** What the wrapping handler logged ("wrapped" only). */
  handlerLogged: string[] = [];
  constructor(
    readonly hook: "handle_accepted" | "handle_accept" | "wrapped",
    readonly mode: Mode,
  ) {
    super();
    this.create_socket();
    this.bind(["127.0.0.1", 0]);
    this.listen(5);
  }
  override log_info(message: string, type = "info"): void {
    this.logged.push(`${type}: ${message}`);
  }
  #fail(): HookResult {
    this.failures++;
    const error = new Error(`${this.hook} failed`);
    if (this.mode === "throws") throw error;
    return Promise.reject(error);
  }
  override handle_accept(): HookResult {
    if (this.hook !== "handle_accept" || this.failures > 0) {
      return super.handle_accept();
    }
    // Python's older style: take the connection, then fail.
    this.accept();
    return this.#fail();
  }
  override handle_accepted(sock: Deno.Conn): HookResult {
    if (this.hook === "handle_accept" || this.failures > 0) {
      new EchoHandler(sock);
      return;
    }
    // "wrapped": the handler exists when the hook fails, and owns the error.
    if (this.hook === "wrapped") {
      const handler = new EchoHandler(sock);
      handler.log_info = (message, type) => {
        this.handlerLogged.push(`${type}: ${message}`);
      };
    }
    return this.#fail();
  }
}

Deno.test("an accept hook that throws or rejects closes that connection, not the listener", async (t) => {
  for (const hook of ["handle_accepted", "handle_accept", "wrapped"] as const) {
    for (const mode of ["throws", "rejects"] as const) {
      await t.step(`${hook} ${mode}`, async () => {
        using rejections = watchRejections();
        using _cleanup = closing();
        const server = new Flaky(hook, mode);
        const [, port] = server.getsockname() as [string, number];
        using first = await Deno.connect({ port });
        let firstEnded = false;
        const ended = readUntil(first, /never/).then(() => firstEnded = true);
        await loopUntil(() => firstEnded, {
          what: "the failed connection is closed",
        });
        await ended;
        assert.equal(server.failures, 1);
        assert.equal(server.accepting, true, "the listener is open");
        // The error was logged for the connection, not the listener.
        assert.equal(server.logged.length, hook === "wrapped" ? 0 : 1);
        for (const line of server.logged) {
          assert.match(
            line,
            new RegExp(
              `^error: uncaptured exception, closing accepted connection from 127\\.0\\.0\\.1:\\d+ \\(Error:${hook} failed `,
            ),
          );
        }
        using second = await Deno.connect({ port });
        await writeAll(second, bytes("hello"));
        let echoed = "";
        const reading = readUntil(second, /hello/).then((s) => echoed = s);
        await loopUntil(() => echoed !== "", { what: "the echo" });
        await reading;
        assert.equal(echoed, "hello");
        if (hook === "wrapped") {
          assert.equal(server.handlerLogged.length, 1);
          assert.match(
            server.handlerLogged[0]!,
            /^error: uncaptured exception, closing channel <EchoHandler connected /,
          );
        }
        assert.deepEqual(rejections.reasons, []);
      });
    }
  }
});

// A listener whose accept() fails as an exhausted process's does, then
// succeeds with `conn` once: the rest between the two is the library's.
function stallingListener(
  conn: Deno.Conn,
): Deno.Listener & { accepts: number } {
  const emfile = Object.assign(new Error("Too many open files (os error 24)"), {
    code: "EMFILE",
  });
  const listener = {
    accepts: 0,
    addr: { transport: "tcp", hostname: "127.0.0.1", port: 9 },
    accept(): Promise<Deno.Conn> {
      listener.accepts++;
      if (listener.accepts === 1) return Promise.reject(emfile);
      if (listener.accepts === 2) return Promise.resolve(conn);
      // Nothing more arrives: an accept that never settles.
      return new Promise<Deno.Conn>(() => {});
    },
    close(): void {},
  };
  return listener as unknown as Deno.Listener & { accepts: number };
}

Deno.test("a stalled accept rests without spinning, resumes, and close() cancels the rest", async (t) => {
  for (const closeDuringRest of [false, true]) {
    await t.step(
      closeDuringRest ? "closed while resting" : "resumes",
      async () => {
        using _cleanup = closing();
        const [accepted, peer] = await loopbackPair();
        using _peer = peer;
        const listener = stallingListener(accepted);
        const logged: string[] = [];
        let handled: Deno.Conn | null = null;
        class Server extends Dispatcher {
          override log_info(message: string, type = "info"): void {
            logged.push(`${type}: ${message}`);
          }
          override handle_accepted(sock: Deno.Conn): void {
            handled = sock;
            new EchoHandler(sock);
          }
        }
        const server = new Server(listener);
        await loopUntil(() => logged.length > 0, {
          what: "the stall is logged",
        });
        assert.match(logged[0]!, /^error: Cannot accept: Too many open files/);
        // Resting: passes go by without another accept.
        await loop({ timeout: 0.01, count: 5 });
        assert.equal(listener.accepts, 1);
        assert.equal(server.accepting, true);
        if (closeDuringRest) {
          // The sanitizers fail the test if the rest's timer outlives close().
          server.close();
          accepted.close();
          return;
        }
        await loopUntil(() => handled !== null, { what: "the accept resumes" });
        // The connection the listener accepted (or Python's socket around it).
        const raw = (handled as { raw?: Deno.Conn } | null)?.raw ?? handled;
        assert.equal(raw, accepted);
        assert.equal(logged.length, 1);
      },
    );
  }
});
