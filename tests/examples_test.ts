// The examples, each run as a separate process the way a user runs it, against
// real peers: Python's http.server, a raw Deno client, each other.

import assert from "node:assert/strict";
import { tempDir } from "./_helpers.ts";

const ROOT = new URL("..", import.meta.url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function example(name: string): string {
  return new URL(`examples/${name}`, ROOT).href;
}

/** The benchmark's echo server, which has `--workers` and TLS. */
const BENCH_ECHO_SERVER = new URL("bench/echo_server.ts", ROOT).href;

async function hasPython(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("python3", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}
const noPython = !(await hasPython());

interface Result {
  code: number;
  stdout: Uint8Array;
  stderr: string;
}

/** Runs `deno run -A <example> ...args` to completion, feeding `input`. */
async function runExample(
  name: string,
  args: string[],
  input: Uint8Array | null = null,
): Promise<Result> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", example(name), ...args],
    cwd: ROOT,
    stdin: input === null ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== null) {
    const writer = child.stdin.getWriter();
    await writer.write(input);
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  return { code, stdout, stderr: decoder.decode(stderr) };
}

/**
 * A long-running child that prints its port on its first line of output.
 * Disposing of it sends SIGTERM and waits for the exit.
 */
class Server implements AsyncDisposable {
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #status: Promise<Deno.CommandStatus> | null = null;
  /** Output read past the first line. */
  #text: string;

  constructor(
    child: Deno.ChildProcess,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    port: number,
    rest = "",
  ) {
    this.#child = child;
    this.#reader = reader;
    this.port = port;
    this.#text = rest;
  }

  /** Settles when the process exits (on its own). */
  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }

  /** The next line of output, or `null` at its end. */
  async line(): Promise<string | null> {
    while (!this.#text.includes("\n")) {
      const { done, value } = await this.#reader.read();
      if (done) return null;
      this.#text += decoder.decode(value, { stream: true });
    }
    const newline = this.#text.indexOf("\n");
    const line = this.#text.slice(0, newline);
    this.#text = this.#text.slice(newline + 1);
    return line;
  }

  static async start(command: string, args: string[]): Promise<Server> {
    const child = new Deno.Command(command, {
      args,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    let first = "";
    while (!first.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) break;
      first += decoder.decode(value, { stream: true });
    }
    const newline = first.indexOf("\n");
    const port = Number(/(\d+)\s*$/.exec(first.slice(0, newline))?.[1]);
    const server = new Server(child, reader, port, first.slice(newline + 1));
    if (!(port > 0)) {
      await server.stop();
      throw new Error(`Cannot start server: its first line was "${first}"`);
    }
    return server;
  }

  /** Sends `signal` once and waits for the exit; drains stdout. */
  stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    this.#status ??= (async () => {
      try {
        this.#child.kill(signal);
      } catch {
        // it already exited
      }
      while (!(await this.#reader.read()).done);
      return await this.#child.status;
    })();
    return this.#status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

// Python's documented file server, on a free loopback port.
const PYTHON_SERVER = `
import functools, http.server, sys
handler = functools.partial(
    http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
`;

function splitResponse(response: Uint8Array): [head: string, body: Uint8Array] {
  for (let i = 0; i + 3 < response.length; i++) {
    if (
      response[i] === 13 && response[i + 1] === 10 &&
      response[i + 2] === 13 && response[i + 3] === 10
    ) {
      return [
        decoder.decode(response.subarray(0, i)),
        response.subarray(i + 4),
      ];
    }
  }
  throw new Error("Cannot split response: no blank line after the headers");
}

Deno.test({
  name:
    "http_client.ts writes python http.server's responses to stdout byte for byte",
  ignore: noPython,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "asyncore-examples-" });
    try {
      const page = encoder.encode("<h1>It's not dead, it's resting</h1>\n");
      await Deno.writeFile(`${dir}/index.html`, page);
      const big = new Uint8Array(5 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 65536) {
        crypto.getRandomValues(big.subarray(i, i + 65536));
      }
      await Deno.writeFile(`${dir}/big.bin`, big);
      await using server = await Server.start("python3", [
        "-c",
        PYTHON_SERVER,
        dir,
      ]);
      const base = `http://127.0.0.1:${server.port}`;

      await t.step("an HTML page", async () => {
        const { code, stdout, stderr } = await runExample("http_client.ts", [
          `${base}/`,
        ]);
        assert.equal(code, 0, stderr);
        const [head, body] = splitResponse(stdout);
        assert.match(head, /^HTTP\/1\.0 200 OK\r\n/);
        assert.match(
          head,
          new RegExp(`^Content-Length: ${page.length}\r?$`, "m"),
        );
        assert.deepEqual(body, page);
      });

      await t.step("a 5 MiB random file", async () => {
        const { code, stdout, stderr } = await runExample("http_client.ts", [
          `${base}/big.bin`,
        ]);
        assert.equal(code, 0, stderr);
        const [head, body] = splitResponse(stdout);
        assert.match(head, /^HTTP\/1\.0 200 OK\r\n/);
        assert.equal(body.length, big.length);
        assert.ok(body.every((byte, i) => byte === big[i]), "body differs");
      });

      await t.step("a missing file's 404 page", async () => {
        const { code, stdout } = await runExample("http_client.ts", [
          `${base}/missing`,
        ]);
        assert.equal(code, 0);
        assert.match(splitResponse(stdout)[0], /^HTTP\/1\.0 404 /);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("http_client.ts rejects a bad URL with exit code 2", async (t) => {
  for (const url of ["not a url", "ftp://x/"]) {
    await t.step(url, async () => {
      const { code, stdout, stderr } = await runExample("http_client.ts", [
        url,
      ]);
      assert.equal(code, 2);
      assert.equal(stdout.length, 0);
      assert.match(stderr, /^http_client: Cannot fetch: /);
    });
  }
});

Deno.test("http_client.ts fetches https:// from Deno's TLS server, trusting the --ca it is given", async (t) => {
  const fixtures = new URL("tests/fixtures/", ROOT);
  const ca = new URL("tls_ca.pem", fixtures).pathname;
  const page = "served over TLS\n";
  await using server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: Deno.readTextFileSync(new URL("tls_server.pem", fixtures)),
    key: Deno.readTextFileSync(new URL("tls_server.key", fixtures)),
    onListen() {},
  }, () => new Response(page));
  const url = `https://127.0.0.1:${server.addr.port}/`;
  await t.step("with --ca: the page", async () => {
    const { code, stdout, stderr } = await runExample("http_client.ts", [
      "--ca",
      ca,
      url,
    ]);
    assert.equal(code, 0, stderr);
    const [head, body] = splitResponse(stdout);
    assert.match(head, /^HTTP\/1\.[01] 200 OK\r\n/);
    assert.equal(decoder.decode(body), page);
  });
  await t.step(
    "without it: exit 1, the certificate is not trusted",
    async () => {
      const { code, stdout, stderr } = await runExample("http_client.ts", [
        url,
      ]);
      assert.equal(code, 1);
      assert.equal(stdout.length, 0);
      assert.match(stderr, /^http_client: .*127\.0\.0\.1:\d+.*certificate/i);
    },
  );
});

Deno.test("http_client.ts refuses a --ca file that holds no PEM certificate, with exit code 2", async () => {
  await using dir = await tempDir();
  const ca = `${dir.path}/not_pem.txt`;
  await Deno.writeTextFile(ca, "this is not a certificate\n");
  const { code, stdout, stderr } = await runExample("http_client.ts", [
    "--ca",
    ca,
    "https://127.0.0.1:1/",
  ]);
  assert.equal(code, 2);
  assert.equal(stdout.length, 0);
  assert.equal(
    stderr,
    `http_client: Cannot use --ca: "${ca}" holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)\n`,
  );
});

Deno.test("http_client.ts exits with 1 when the connection is refused", async () => {
  // A port that was free a moment ago and has nobody listening now.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const { code, stdout, stderr } = await runExample("http_client.ts", [
    `http://127.0.0.1:${port}/`,
  ]);
  assert.equal(code, 1);
  assert.equal(stdout.length, 0);
  assert.match(stderr, /^http_client: cannot connect to 127\.0\.0\.1:\d+: /);
});

/** The ids of the processes holding an established TCP socket on `port`. */
async function servingProcesses(
  pids: number[],
  port: number,
): Promise<number[]> {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const lines = (await Deno.readTextFile(table)).trim().split("\n").slice(1);
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      const local = parseInt(fields[1]!.split(":")[1]!, 16);
      if (local === port && fields[3] === "01") inodes.add(fields[9]!);
    }
  }
  const serving: number[] = [];
  for (const pid of pids) {
    for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
      const target = await Deno.readLink(`/proc/${pid}/fd/${fd.name}`).catch(
        () => "",
      );
      if (inodes.has(/^socket:\[(\d+)\]$/.exec(target)?.[1] ?? "")) {
        serving.push(pid);
        break;
      }
    }
  }
  return serving;
}

/** Sends `message` and reads it back. */
async function echo(conn: Deno.Conn, message: Uint8Array): Promise<Uint8Array> {
  await conn.write(message);
  const reply = new Uint8Array(message.length);
  for (let got = 0; got < reply.length;) {
    const n = await conn.read(reply.subarray(got));
    if (n === null) break;
    got += n;
  }
  return reply;
}

Deno.test({
  name:
    "bench/echo_server.ts and http_server.ts --workers 2: two processes share the port and both serve; one dying stops the pool, and so does the supervisor's",
  ignore: Deno.build.os !== "linux",
  async fn(t) {
    for (
      const [name, script, extra] of [
        ["bench/echo_server.ts", BENCH_ECHO_SERVER, []],
        ["http_server.ts", example("http_server.ts"), [".", "127.0.0.1"]],
      ] as const
    ) {
      await t.step(name, async () => {
        await using server = await Server.start(Deno.execPath(), [
          "run",
          "-A",
          script,
          "--workers",
          "2",
          "0",
          ...extra,
        ]);
        const pids = (await server.line())!.replace("workers: ", "").split(" ")
          .map(Number);
        assert.equal(pids.length, 2);
        // SO_REUSEPORT spreads connections by a hash of their addresses: 32
        // of them all landing in one process has odds of 2^-31.
        const conns = await Promise.all(
          Array.from(
            { length: 32 },
            () => Deno.connect({ hostname: "127.0.0.1", port: server.port }),
          ),
        );
        try {
          for (const conn of conns) {
            if (name === "bench/echo_server.ts") {
              const message = encoder.encode("Norwegian Blue\n");
              assert.deepEqual(await echo(conn, message), message);
            } else {
              const reply = await echo(
                conn,
                encoder.encode("HEAD /README.md HTTP/1.1\r\nHost: x\r\n\r\n"),
              );
              assert.match(decoder.decode(reply), /^HTTP\/1\.1 200 OK/);
            }
          }
          assert.deepEqual(await servingProcesses(pids, server.port), pids);
        } finally {
          for (const conn of conns) conn.close();
        }
        const status = await server.stop("SIGTERM");
        assert.equal(status.code, 0);
        for (const pid of pids) {
          await assert.rejects(Deno.stat(`/proc/${pid}`), Deno.errors.NotFound);
        }
      });
    }
    await t.step("a process that dies stops the others, exit 1", async () => {
      await using server = await Server.start(Deno.execPath(), [
        "run",
        "-A",
        BENCH_ECHO_SERVER,
        "--workers",
        "2",
        "0",
      ]);
      const pids = (await server.line())!.replace("workers: ", "").split(" ")
        .map(Number);
      Deno.kill(pids[0]!, "SIGKILL");
      assert.equal((await server.status).code, 1);
      await assert.rejects(Deno.stat(`/proc/${pids[1]}`), Deno.errors.NotFound);
    });
    for (
      const [name, script] of [
        ["bench/echo_server.ts", BENCH_ECHO_SERVER],
        ["http_server.ts", example("http_server.ts")],
      ] as const
    ) {
      await t.step(
        `${name}: a supervisor killed with SIGKILL leaves no process serving the port`,
        async () => {
          await using server = await Server.start(Deno.execPath(), [
            "run",
            "-A",
            script,
            "--workers",
            "2",
            "0",
          ]);
          const pids = (await server.line())!.replace("workers: ", "")
            .split(" ").map(Number);
          try {
            assert.equal((await server.stop("SIGKILL")).signal, "SIGKILL");
            // Orphans are reaped by init, or stay zombies where nothing
            // reaps them: either way they no longer run. A zombie's other
            // threads may still hold its sockets for a moment, hence the
            // port is watched too.
            const running = async (pid: number): Promise<boolean> => {
              const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(
                () => "",
              );
              return stat !== "" && !/^\d+ \(.*\) Z /.test(stat);
            };
            const refused = (): Promise<boolean> =>
              Deno.connect({ hostname: "127.0.0.1", port: server.port }).then(
                (conn) => {
                  conn.close();
                  return false;
                },
                (error) => {
                  if (error instanceof Deno.errors.ConnectionRefused) {
                    return true;
                  }
                  throw error;
                },
              );
            const deadline = Date.now() + 10_000;
            while (
              (await Promise.all(pids.map(running))).some(Boolean) ||
              !(await refused())
            ) {
              assert.ok(
                Date.now() < deadline,
                "the processes outlived their supervisor by 10 s",
              );
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          } finally {
            for (const pid of pids) {
              try {
                Deno.kill(pid, "SIGKILL");
              } catch {
                // gone, as it should be
              }
            }
          }
        },
      );
    }
  },
});

Deno.test("echo_server.ts echoes a raw client and exits with 0 on SIGTERM", async () => {
  await using server = await Server.start(Deno.execPath(), [
    "run",
    "-A",
    example("echo_server.ts"),
    "0",
  ]);
  const message = encoder.encode("The plumage don't enter into it.\n");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(message);
    const reply = new Uint8Array(message.length);
    let got = 0;
    while (got < reply.length) {
      const n = await conn.read(reply.subarray(got));
      if (n === null) break;
      got += n;
    }
    assert.deepEqual(reply, message);
  } finally {
    conn.close();
  }
  const status = await server.stop("SIGTERM");
  assert.equal(status.code, 0);
  assert.equal(status.signal, null);
});

Deno.test("echo_client.ts sends stdin's lines to the echo servers and prints the replies", async (t) => {
  const fixtures = new URL("tests/fixtures/", ROOT).pathname;
  const tls = [
    "--tls-cert",
    `${fixtures}tls_server.pem`,
    "--tls-key",
    `${fixtures}tls_server.key`,
  ];
  const ca = ["--ca", `${fixtures}tls_ca.pem`];
  const plain = example("echo_server.ts");
  const cases: [string, string, string[], string[]][] = [
    ["plain TCP", plain, [], []],
    ["plain TCP, the benchmark's server", BENCH_ECHO_SERVER, [], []],
    ["TLS, trusting the test CA", BENCH_ECHO_SERVER, tls, ca],
    [
      "TLS to two processes sharing the port",
      BENCH_ECHO_SERVER,
      ["--workers", "2", ...tls],
      ca,
    ],
  ];
  for (const [name, script, serverArgs, clientArgs] of cases) {
    await t.step(name, async () => {
      await using server = await Server.start(Deno.execPath(), [
        "run",
        "-A",
        script,
        ...serverArgs,
        "0",
      ]);
      const lines = Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(
        "",
      );
      const { code, stdout, stderr } = await runExample(
        "echo_client.ts",
        [...clientArgs, String(server.port), "127.0.0.1"],
        encoder.encode(lines),
      );
      assert.equal(code, 0, stderr);
      assert.equal(decoder.decode(stdout), lines);
    });
  }
});

Deno.test("demo.ts serves a generated page to http_client.ts and exits with 0", async () => {
  const { code, stdout, stderr } = await runExample("demo.ts", []);
  assert.equal(code, 0, stderr);
  const text = decoder.decode(stdout);
  assert.match(text, /HTTP\/1\.0 200 OK\r\n/);
  assert.match(text, /<h1>Hello from asyncore for Deno<\/h1>/);
  assert.match(text, /demo: done/);
});

// A Python socket as the UDP peer: echoes come back from the server's port,
// and a datagram longer than recvfrom()'s 2048 bytes is cut, as UDP does.
const PYTHON_UDP_PEER = `
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(10)
sizes = []
for message in [b"hello", b"x" * 2048, b"y" * 3000]:
    s.sendto(message, (host, port))
    data, addr = s.recvfrom(65536)
    assert addr[1] == port, addr
    assert data == message[:2048]
    sizes.append(len(data))
print(sizes)
`;

Deno.test({
  name: "udp_echo.ts echoes a Python socket's datagrams (IPv4 and IPv6)",
  ignore: noPython,
  async fn(t) {
    for (const host of ["127.0.0.1", "::1"]) {
      await t.step(host, async () => {
        await using server = await Server.start(Deno.execPath(), [
          "run",
          "-A",
          "--unstable-net",
          example("udp_echo.ts"),
          "0",
          host,
        ]);
        const { code, stdout, stderr } = await new Deno.Command("python3", {
          args: ["-c", PYTHON_UDP_PEER, host, String(server.port)],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.equal(code, 0, decoder.decode(stderr));
        assert.equal(decoder.decode(stdout).trim(), "[5, 2048, 2048]");
        assert.equal((await server.stop()).code, 0);
      });
    }
  },
});

Deno.test("udp_echo.ts without --unstable-net exits with an error naming the flag", async () => {
  const { code, stderr } = await runExample("udp_echo.ts", ["0"]);
  assert.notEqual(code, 0);
  assert.match(stderr, /Cannot create socket: UDP needs Deno's --unstable-net/);
});
