/**
 * HTTP benchmark: `wrk` against three servers that do the same work for one
 * small file, all measured in the same run:
 *
 * - `asyncore`: `examples/http_server.ts` (AsyncChat),
 * - `Deno.serve`: `bench/http/servers/deno_serve.ts`,
 * - `raw Deno`: `bench/http/servers/raw_deno.ts` (`Deno.listen` and an
 *   async read/parse/write loop per connection), the baseline of the ratios.
 *
 *     deno run -A bench/http/run.ts
 *
 * Each measurement starts a fresh server pinned to CPU 0 (`taskset`), warms
 * it up with a 1 s `wrk` run, then runs `wrk -t1 -cN -d5s --latency` pinned
 * to CPU 1. The server order rotates between rounds. Prints a markdown table
 * of medians and ratios to raw Deno. Skips (exit 0) with a message when `wrk`
 * or `taskset` is missing.
 *
 * Environment knobs (defaults): `RUNS=3`, `DURATION=5` (seconds),
 * `WARMUP=1`, `CONNECTIONS="50 200"`, `FILE_SIZE=1024` (bytes),
 * `SERVER_CPU=0`, `CLIENT_CPU=1`, `SERVERS` (names to keep, space separated:
 * `asyncore deno_serve raw_deno`).
 *
 * @module
 */

const here = new URL(".", import.meta.url);
const root = new URL("../../", here);

interface Server {
  name: string;
  label: string;
  script: string;
}

const ALL_SERVERS: Server[] = [
  {
    name: "asyncore",
    label: "asyncore (examples/http_server.ts)",
    script: new URL("examples/http_server.ts", root).pathname,
  },
  {
    name: "deno_serve",
    label: "Deno.serve",
    script: new URL("servers/deno_serve.ts", here).pathname,
  },
  {
    name: "raw_deno",
    label: "raw Deno (Deno.listen loop)",
    script: new URL("servers/raw_deno.ts", here).pathname,
  },
];

interface Result {
  rps: number;
  p50: number;
  p99: number;
  /** Non-2xx/3xx responses plus socket errors (wrk's 2 s timeouts count). */
  errors: number;
  /** wrk's own error lines, for the log. */
  detail: string;
}

function env(name: string, fallback: string): string {
  return Deno.env.get(name) ?? fallback;
}

async function output(cmd: string, args: string[]): Promise<string | null> {
  try {
    const { stdout, stderr } = await new Deno.Command(cmd, { args }).output();
    return new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

// wrk prints durations as 812.00us, 1.20ms or 1.01s.
function millis(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (match === null) return NaN;
  const value = Number(match[1]);
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60000 }[match[2]!]!;
  return value * scale;
}

function parseWrk(text: string): Result {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const p50 = millis(/^\s+50%\s+(\S+)/m.exec(text)?.[1] ?? "");
  const p99 = millis(/^\s+99%\s+(\S+)/m.exec(text)?.[1] ?? "");
  let errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const socket =
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
      .exec(text);
  if (socket) errors += socket.slice(1).reduce((sum, n) => sum + Number(n), 0);
  if (Number.isNaN(rps)) throw new Error(`Cannot parse wrk output:\n${text}`);
  const detail = text.split("\n").filter((line) =>
    /Non-2xx|Socket errors/.test(line)
  ).map((line) => line.trim()).join("; ");
  return { rps, p50, p99, errors, detail };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function startServer(
  server: Server,
  dir: string,
  cpu: string,
): Promise<{ child: Deno.ChildProcess; url: string }> {
  const child = new Deno.Command("taskset", {
    args: ["-c", cpu, Deno.execPath(), "run", "-A", server.script, "0", dir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${server.name} exited before listening`);
    seen += value;
  }
  // Keep draining stdout so a chatty server never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })();
  const address = /listening on (\S+):(\d+)/.exec(seen);
  if (address === null) throw new Error(`${server.name} said: ${seen}`);
  return { child, url: `http://${address[1]}:${address[2]}/index.html` };
}

async function stopServer(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  await child.status;
}

async function check(url: string, body: Uint8Array, name: string) {
  using client = Deno.createHttpClient({});
  const response = await fetch(url, { client });
  const got = new Uint8Array(await response.arrayBuffer());
  const type = response.headers.get("content-type");
  if (
    response.status !== 200 || type !== "text/html; charset=utf-8" ||
    got.length !== body.length || got.some((byte, i) => byte !== body[i])
  ) {
    throw new Error(`${name} served a wrong response (${response.status})`);
  }
}

async function main(): Promise<void> {
  const runs = Number(env("RUNS", "3"));
  const duration = env("DURATION", "5");
  const warmup = env("WARMUP", "1");
  const connections = env("CONNECTIONS", "50 200").split(/\s+/).map(Number);
  const fileSize = Number(env("FILE_SIZE", "1024"));
  const serverCpu = env("SERVER_CPU", "0");
  const clientCpu = env("CLIENT_CPU", "1");
  const keep = env("SERVERS", "").split(/\s+/).filter(Boolean);
  const servers = keep.length
    ? ALL_SERVERS.filter((s) => keep.includes(s.name))
    : ALL_SERVERS;

  const wrkVersion = await output("wrk", ["--version"]);
  if (wrkVersion === null) {
    console.log("skipped: wrk not found (install it: apt-get install -y wrk)");
    return;
  }
  if ((await output("taskset", ["-c", "0", "true"])) === null) {
    console.log("skipped: taskset not found (util-linux)");
    return;
  }

  const dir = await Deno.makeTempDir({ prefix: "http-bench-" });
  const body = new Uint8Array(fileSize);
  for (let i = 0; i < fileSize; i++) body[i] = 97 + (i % 26);
  await Deno.writeFile(`${dir}/index.html`, body);

  const results = new Map<string, Result[]>();
  try {
    for (let run = 0; run < runs; run++) {
      for (const conns of connections) {
        // Rotate the order so no server always runs first (or last).
        const order = servers.map((_, i) =>
          servers[(i + run) % servers.length]!
        );
        for (const server of order) {
          const { child, url } = await startServer(server, dir, serverCpu);
          try {
            if (run === 0) await check(url, body, server.name);
            const wrk = (d: string) =>
              output("taskset", [
                "-c",
                clientCpu,
                "wrk",
                "-t1",
                `-c${conns}`,
                `-d${d}s`,
                "--latency",
                url,
              ]);
            await wrk(warmup);
            const result = parseWrk((await wrk(duration))!);
            const key = `${server.name}/${conns}`;
            results.set(key, [...(results.get(key) ?? []), result]);
            console.error(
              `run ${run + 1} ${server.name} c=${conns}: ${
                result.rps.toFixed(0)
              } req/s, p99 ${
                result.p99.toFixed(2)
              } ms, errors ${result.errors}`,
            );
          } finally {
            await stopServer(child);
          }
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  const version = Deno.version.deno;
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => ""))
    .match(/model name\s*:\s*(.+)/)?.[1] ?? "unknown CPU";
  console.log(
    `HTTP GET of one ${fileSize}-byte file, keep-alive; ` +
      `\`wrk -t1 -cN -d${duration}s\` on CPU ${clientCpu}, server on CPU ` +
      `${serverCpu}; median of ${runs} runs (each after a ${warmup} s ` +
      `warm-up on a fresh server). Deno ${version}, ` +
      `wrk ${
        /wrk\s+(?:\S*\/)?([\d.]+)/.exec(wrkVersion)?.[1] ?? "?"
      }, ${cpu}, ` +
      `${navigator.hardwareConcurrency} CPUs.\n`,
  );
  console.log(
    "| server | connections | req/s (median) | vs raw Deno | p50 ms | p99 ms | runs (req/s) | errors |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |");
  for (const conns of connections) {
    const base = results.get(`raw_deno/${conns}`);
    const baseRps = base ? median(base.map((r) => r.rps)) : NaN;
    for (const server of servers) {
      const list = results.get(`${server.name}/${conns}`) ?? [];
      const rps = median(list.map((r) => r.rps));
      const ratio = Number.isNaN(baseRps)
        ? "–"
        : `${(rps / baseRps).toFixed(2)}×`;
      console.log(
        `| ${server.label} | ${conns} | ${rps.toFixed(0)} | ${ratio} | ${
          median(list.map((r) => r.p50)).toFixed(2)
        } | ${median(list.map((r) => r.p99)).toFixed(2)} | ${
          list.map((r) => r.rps.toFixed(0)).join(", ")
        } | ${list.reduce((sum, r) => sum + r.errors, 0)} |`,
      );
    }
  }
}

if (import.meta.main) await main();
