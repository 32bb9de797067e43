/**
 * The echo benchmark suite: the project's `bench/echo_server.ts` against
 * an idiomatic raw Deno echo server (`bench/raw_deno_echo.ts`), measured in
 * the same run by a C epoll load generator (`bench/loadgen.c`, built with
 * `cc` on first use). Linux only (epoll, `/proc`).
 *
 *     deno task bench [--quick] [--runs N] [--dur SECS] [--scenarios a,b]
 *                     [--servers a,b] [--anchors]
 *
 * Every (server, scenario) pair gets a fresh server process pinned to one core
 * (`taskset`), the load generator runs on another, and the servers take turns
 * within each scenario and run. The tables show medians over the runs and,
 * against raw Deno and raw Deno with capped ticks, the median of per-run
 * ratios with their range; the first gives the server's CPU time per unit
 * of work, which a saturated load generator (flagged) does not distort. A
 * chart of messages per connection at pp1000 goes to `--svg`. The
 * `cores1`/`cores2` scenarios run the server as 1 and 2 processes sharing
 * the port (`--workers`), to show how it scales with cores; that needs a
 * third core for the load generator. Run `--help` for every option.
 *
 * @module
 */

import { type Server, startServer, stopServer } from "./_server.ts";
import { formatSummary, summarize } from "./_profile.ts";
import {
  ANCHORS,
  BASE,
  FAIR_BASE,
  fits,
  type Measurement,
  type Options,
  ROOT,
  SCENARIOS,
  SERVERS,
} from "./_suite.ts";
import { parseConnectionCounts, parseResult, resultLine } from "./_results.ts";
import { noiseOf, orderOf, report, retabulate, writeReport } from "./_table.ts";

const LOADGEN_SRC = `${ROOT}bench/loadgen.c`;
const LOADGEN = `${ROOT}bench/loadgen/loadgen`;

const USAGE = `usage: deno task bench [options]

  --quick            about a minute: 1 run, 2 s per scenario (env QUICK=1)
  --runs N           repetitions of the whole matrix (env RUNS, default 3)
  --dur SECS         timed seconds per scenario (env DUR, default 5)
  --warm SECS        warm-up seconds before timing (env WARM, default 1)
  --hold SECS        seconds the idle connections are held (env HOLD, default 3)
  --idle-conns N     connections in the idle scenario (env IDLE_CONNS, 10000)
  --churn-conns N    concurrent cycles in the churn scenario (env CHURN_CONNS, 64)
  --scenarios LIST   comma separated, from ${Object.keys(SCENARIOS).join(",")}
                     (env SCENARIOS, default all)
  --servers LIST     comma separated, from ${Object.keys(SERVERS).join(",")}
                     (env SERVERS, default asyncore,raw_deno,raw_deno_fair)
  --anchors          add the project's server with the runtime capped at 128
                     I/O events per tick ("capped ticks"), and python3
                     asyncore and node net when present, to --servers
                     (env ANCHORS=1)
  --add NAME=CMD     measure another server too (repeatable): a .ts/.js file run
                     with deno run -A, or a command; it gets "0" as last argument
                     (the port) and must print "listening on HOST:PORT"
  --server-cpu N     core the server is pinned to (env SERVER_CPU, default 0)
  --client-cpu N     core the load generator is pinned to (env CLIENT_CPU, default 1)
  --max-noise PCT    measure again when other programs used more than PCT% of a
                     cpu meanwhile (env MAX_NOISE, default 15)
  --retries N        how many times at most (env RETRIES, default 2)
  --alternate        A/B mode: per scenario, start every server once and keep it
                     running while the load generator alternates among them,
                     one window of --dur seconds per server and run (e.g.
                     --alternate --runs 30 --dur 1); drift between windows
                     seconds apart is smaller than between fresh processes
                     minutes apart (env ALTERNATE=1; not for idle or --profile)
  --profile          record a CPU profile of each Deno server (deno --cpu-prof)
                     and print its hottest functions; profiling slows the
                     servers, so compare such runs only with each other
  --table FILE       print the table of an earlier run's results.json again,
                     or of a results.txt (also ../shared/bench/run.sh's)
                     (and write --markdown and --svg from it); repeated, it
                     pools the runs of several sets of the same code, each
                     set's runs numbered after the last set's
  --markdown FILE    write the markdown table to FILE too (env MARKDOWN; it
                     is always written to the --out directory as table.md)
  --svg FILE         where the chart of messages per connection at pp1000
                     goes (env SVG, default bench/results/fairness.svg;
                     "" for none)
  --out DIR          where raw results go (env OUT,
                     default $TMPDIR/asyncore-bench/<timestamp>)
`;

function parseOptions(args: string[]): Options {
  const env = (name: string): string | undefined => Deno.env.get(name);
  const flags = new Map<string, string>();
  const added: string[] = [];
  const tables: string[] = [];
  const known = [
    "add",
    "quick",
    "anchors",
    "runs",
    "dur",
    "warm",
    "hold",
    "idle-conns",
    "churn-conns",
    "scenarios",
    "servers",
    "server-cpu",
    "client-cpu",
    "max-noise",
    "retries",
    "out",
    "table",
    "profile",
    "alternate",
    "markdown",
    "svg",
  ];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      Deno.exit(0);
    }
    if (!arg.startsWith("--")) usageError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (!known.includes(name)) usageError(`unknown option "--${name}"`);
    if (
      name === "quick" || name === "anchors" || name === "profile" ||
      name === "alternate"
    ) {
      flags.set(name, "1");
    } else if (eq < 0 && i + 1 >= args.length) {
      usageError(`"--${name}" needs a value`);
    } else {
      const value = eq < 0 ? args[++i]! : arg.slice(eq + 1);
      if (name === "add") added.push(addServer(value));
      else if (name === "table") tables.push(value);
      else flags.set(name, value);
    }
  }
  const get = (name: string): string | undefined =>
    flags.get(name) ?? env(name.toUpperCase().replace("-", "_"));
  const quick = get("quick") === "1";
  const anchors = get("anchors") === "1";
  const num = (name: string, fallback: number, min: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min) {
      usageError(`"--${name}" must be a number >= ${min}, got "${raw}"`);
    }
    return value;
  };
  const list = (name: string, all: string[], fallback: string[]): string[] => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const items = raw.split(/[\s,]+/).filter((s) => s !== "");
    for (const item of items) {
      if (!all.includes(item)) {
        usageError(`"--${name}": unknown "${item}" (one of ${all.join(", ")})`);
      }
    }
    return items;
  };
  const servers = list("servers", Object.keys(SERVERS), [
    "asyncore",
    BASE,
    FAIR_BASE,
  ]);
  for (const name of [...(anchors ? ANCHORS : []), ...added]) {
    if (!servers.includes(name)) servers.push(name);
  }
  const profile = get("profile") === "1";
  const alternate = get("alternate") === "1";
  if (profile && alternate) {
    usageError(
      '"--alternate" keeps servers running, and a profile is written when one exits: use one or the other',
    );
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  return {
    runs: Math.floor(num("runs", quick ? 1 : 3, 1)),
    dur: num("dur", quick ? 2 : 5, 0.1),
    warm: num("warm", quick ? 0.5 : 1, 0),
    hold: num("hold", quick ? 2 : 3, 1),
    idleConns: Math.floor(num("idle-conns", 10_000, 1)),
    churnConns: Math.floor(num("churn-conns", 64, 1)),
    scenarios: list(
      "scenarios",
      Object.keys(SCENARIOS),
      Object.keys(SCENARIOS),
    ),
    servers,
    serverCpu: Math.floor(num("server-cpu", 0, 0)),
    clientCpu: Math.floor(num("client-cpu", 1, 0)),
    maxNoise: num("max-noise", 15, 0),
    retries: Math.floor(num("retries", 2, 0)),
    table: tables,
    profile,
    alternate,
    svg: get("svg") ?? `${ROOT}bench/results/fairness.svg`,
    markdown: get("markdown"),
    out: get("out") ??
      `${env("TMPDIR") ?? "/tmp"}/asyncore-bench/${stamp}`,
  };
}

// "NAME=server.ts" or "NAME=command args": a server to measure too; it is
// given the port "0" as its last argument.
function addServer(spec: string): string {
  const eq = spec.indexOf("=");
  const name = spec.slice(0, eq);
  const words = spec.slice(eq + 1).trim().split(/\s+/).filter((w) => w !== "");
  if (eq <= 0 || !/^[\w-]+$/.test(name) || words.length === 0) {
    usageError(`"--add" wants NAME=COMMAND, got "${spec}"`);
  }
  if (name in SERVERS) usageError(`"--add": "${name}" is taken`);
  const [first] = words;
  if (words.length === 1 && /\.(ts|tsx|js|mjs)$/.test(first!)) {
    const path = first!.startsWith("/") ? first! : `${Deno.cwd()}/${first}`;
    words.splice(0, 1, Deno.execPath(), "run", "-A", path);
  }
  SERVERS[name] = { label: name, argv: [...words, "0"] };
  return name;
}

function usageError(message: string): never {
  console.error(`bench: ${message}\n\n${USAGE}`);
  Deno.exit(2);
}

/** Runs `argv` to completion; `null` when the program does not exist. */
async function run(
  argv: string[],
  options: { timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string } | null> {
  const abort = new AbortController();
  const timer = options.timeoutMs === undefined
    ? undefined
    : setTimeout(() => abort.abort(), options.timeoutMs);
  try {
    const out = await new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: abort.signal,
    }).output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function mtime(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

async function buildLoadgen(): Promise<void> {
  const built = await mtime(LOADGEN);
  const source = await mtime(LOADGEN_SRC);
  if (source === null) {
    throw new Error(`Cannot build: ${LOADGEN_SRC} is missing`);
  }
  if (built !== null && built >= source) return;
  await Deno.mkdir(`${ROOT}bench/loadgen`, { recursive: true });
  console.log(`building ${LOADGEN} with cc -O2`);
  const result = await run(["cc", "-O2", "-Wall", "-o", LOADGEN, LOADGEN_SRC]);
  if (result === null) {
    throw new Error(
      "Cannot build the load generator: no C compiler (`cc`) on PATH; install gcc or clang",
    );
  }
  if (result.code !== 0) {
    throw new Error(`Cannot build the load generator:\n${result.stderr}`);
  }
}

/** `taskset -c CPU` when pinning works here, else nothing. */
async function pinning(o: Options): Promise<[string[], string[]]> {
  const cpus = navigator.hardwareConcurrency;
  if (cpus < 2 || o.serverCpu >= cpus || o.clientCpu >= cpus) {
    console.log(`not pinning: ${cpus} cpu(s)`);
    return [[], []];
  }
  const probe = await run(["taskset", "-c", `${o.serverCpu}`, "true"]);
  if (probe === null || probe.code !== 0) {
    console.log("not pinning: taskset is missing or not permitted");
    return [[], []];
  }
  return [
    ["taskset", "-c", `${o.serverCpu}`],
    ["taskset", "-c", `${o.clientCpu}`],
  ];
}

// Raises the soft descriptor limit (and the hard one where permitted) before
// exec'ing the server: Deno and Node raise their own, Python does not.
function withFileLimit(argv: string[], need: number): string[] {
  const script = `need=${need}
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
  ulimit -Hn "$need" 2>/dev/null || echo "warning: RLIMIT_NOFILE hard limit $hard < $need" >&2
fi
soft=$(ulimit -Hn)
[ "$soft" = unlimited ] && soft=$need
ulimit -Sn "$soft"
exec "$@"`;
  return ["bash", "-c", script, "bench-server", ...argv];
}

// The cores scenarios: the server on cores 0..N-1 and the load generator on
// the last core when there are enough cores for both (3 or more), so that
// cores1 and cores2 differ only in the server's cores; otherwise nothing is
// pinned and the load generator competes with the server's processes.
function poolPins(
  workers: number,
  pins: [string[], string[]],
): [string[], string[]] {
  const cpus = navigator.hardwareConcurrency;
  if (pins[0].length === 0 || cpus < 3) return [[], []];
  const cores = workers === 1 ? "0" : `0-${workers - 1}`;
  return [["taskset", "-c", cores], ["taskset", "-c", `${cpus - 1}`]];
}

function profileDir(o: Options, tag: string): string {
  return `${o.out}/profiles/${tag}`;
}

/** A server started for a scenario, and where its load generator runs. */
interface Launched {
  server: Server;
  clientPin: string[];
}

// Starts `name` as `scenarioName` needs it (descriptor limit, workers,
// pinning, profiling); a string says why it could not start.
async function launch(
  o: Options,
  pins: [string[], string[]],
  name: string,
  scenarioName: string,
  tag: string,
): Promise<Launched | string> {
  const scenario = SCENARIOS[scenarioName]!;
  let argv = SERVERS[name]!.argv;
  if (o.profile && argv[0] === Deno.execPath() && argv[1] === "run") {
    argv = [
      argv[0],
      "run",
      "--cpu-prof",
      `--cpu-prof-dir=${profileDir(o, tag)}`,
      ...argv.slice(2),
    ];
  }
  if (scenario.manyFiles) argv = withFileLimit(argv, o.idleConns + 256);
  const workers = scenario.workers ?? 0;
  if (workers > 1) {
    argv = [...argv.slice(0, -1), "--workers", `${workers}`, "0"];
  }
  const [serverPin, clientPin] = workers > 0 ? poolPins(workers, pins) : pins;
  argv = [...serverPin, ...argv];
  try {
    const server = await startServer(
      argv,
      `${o.out}/logs/${tag}.server.log`,
      SERVERS[name]!.env,
    );
    return { server, clientPin };
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

// One timed load-generator run against a started server.
async function loadOnce(
  o: Options,
  launched: Launched | string,
  runNumber: number,
  name: string,
  scenarioName: string,
  tag: string,
): Promise<Measurement> {
  const head = { run: runNumber, server: name, scenario: scenarioName };
  if (typeof launched === "string") {
    return { ...head, result: null, error: launched };
  }
  const { server, clientPin } = launched;
  const args = [
    ...SCENARIOS[scenarioName]!.args(o),
    "-h",
    "127.0.0.1",
    "-p",
    `${server.port}`,
    "-P",
    `${server.child.pid}`,
  ];
  const timeoutMs = (o.dur + o.warm + o.hold + 200) * 1000;
  const out = await run([...clientPin, LOADGEN, ...args], { timeoutMs });
  const text = out === null ? "" : out.stdout + out.stderr;
  await Deno.writeTextFile(`${o.out}/logs/${tag}.loadgen.log`, text);
  const result = parseResult(text);
  const perConnection = parseConnectionCounts(text);
  const clientCore = clientPin.at(-1);
  return {
    ...head,
    result,
    ...(result === null
      ? { error: "the load generator printed no RESULT" }
      : {}),
    clientCore: clientCore === undefined ? null : Number(clientCore),
    ...(perConnection === undefined ? {} : { perConnection }),
  };
}

// A fresh server process for one measurement.
async function measure(
  o: Options,
  pins: [string[], string[]],
  runNumber: number,
  name: string,
  scenarioName: string,
  attempt: number,
): Promise<Measurement> {
  const tag = `run${runNumber}.${name}.${scenarioName}${
    attempt > 1 ? `.try${attempt}` : ""
  }`;
  const launched = await launch(o, pins, name, scenarioName, tag);
  const record = await loadOnce(
    o,
    launched,
    runNumber,
    name,
    scenarioName,
    tag,
  );
  if (typeof launched !== "string") await stopServer(launched.server);
  if (o.profile) await reportProfile(profileDir(o, tag), tag);
  return record;
}

// The profile is written when the server exits; a server that is not a Deno
// program has none.
async function reportProfile(dir: string, tag: string): Promise<void> {
  let summary;
  try {
    summary = await summarize(dir, 12);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  const text = formatSummary(summary);
  await Deno.writeTextFile(`${dir}/hotspots.txt`, `${text}\n`);
  console.log(`${tag}: self time by function (${dir})\n${text}`);
}

async function machine(): Promise<string> {
  let cpu = "unknown cpu";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = /model name\s*:\s*(.+)/.exec(info)?.[1] ?? cpu;
  } catch {
    // not Linux: main() refuses to run anyway
  }
  const memory = Deno.systemMemoryInfo().total / 2 ** 30;
  return `${cpu}, ${navigator.hardwareConcurrency} cpus, ${
    memory.toFixed(0)
  } GiB, Linux ${Deno.osRelease()}, Deno ${Deno.version.deno}`;
}

/**
 * Measures once the cpus are idle, and again (after waiting for idle cpus)
 * while other programs turn out to have used them meanwhile; `attempt(n)`
 * makes the n-th measurement.
 */
async function measureQuietly(
  o: Options,
  attempt: (n: number) => Promise<Measurement>,
): Promise<Measurement> {
  await settle();
  let record = await attempt(1);
  let attempts = 1;
  while (attempts <= o.retries) {
    const noise = noiseOf(record);
    if (noise <= o.maxNoise) break;
    console.log(
      `${label(record, o)} other programs used ${noise}% cpu: measuring again`,
    );
    await settle();
    record = await attempt(++attempts);
  }
  return { ...record, attempts };
}

function label(record: Measurement, o: Options): string {
  return `run ${record.run}/${o.runs} ${record.scenario.padEnd(6)} ${
    record.server.padEnd(11)
  }`;
}

function summary(record: Measurement): string {
  const r = record.result;
  if (r === null) return `FAILED: ${record.error}`;
  return Object.entries(r)
    .filter(([key]) => SHOWN.has(key))
    .map(([key, value]) => `${key}=${value}`)
    .join(" ");
}

/** Waits (a minute at most) until other programs leave the cpus idle. */
async function settle(): Promise<void> {
  for (let i = 0; i < 120; i++) {
    const busy = await cpuBusy(500);
    if (busy < 5) return;
    if (i === 0) {
      console.log(
        `cpus ${
          busy.toFixed(0)
        }% busy with other programs: waiting (up to a minute)`,
      );
    }
  }
}

/** Busy% of all cpus over `ms` milliseconds, from `/proc/stat`. */
async function cpuBusy(ms: number): Promise<number> {
  const sample = async (): Promise<[busy: number, total: number]> => {
    const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0]!;
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    // idle and iowait are the 4th and 5th fields
    return [total - ticks[3]! - ticks[4]!, total];
  };
  const [busy0, total0] = await sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const [busy1, total1] = await sample();
  return total1 > total0 ? 100 * (busy1 - busy0) / (total1 - total0) : 0;
}

// --alternate: per scenario, every server is started once, loaded once
// untimed (JIT, buffers), then measured in turns, in reverse order every
// other run, so that windows seconds apart share the machine's state.
async function alternate(
  o: Options,
  pins: [string[], string[]],
  keep: (record: Measurement) => Promise<void>,
): Promise<void> {
  const skipped = o.scenarios.filter((s) => SCENARIOS[s]!.manyFiles);
  if (skipped.length > 0) {
    console.log(
      `--alternate: skipping ${
        skipped.join(", ")
      } (it measures a fresh server's memory growth)`,
    );
    o.scenarios = o.scenarios.filter((s) => !skipped.includes(s));
  }
  for (const scenario of o.scenarios) {
    const names = o.servers.filter((server) => fits(scenario, server));
    const launched = new Map<string, Launched | string>();
    try {
      for (const name of names) {
        const tag = `${name}.${scenario}`;
        const server = await launch(o, pins, name, scenario, tag);
        launched.set(name, server);
        await loadOnce(o, server, 0, name, scenario, `warmup.${tag}`);
      }
      for (let i = 1; i <= o.runs; i++) {
        const order = i % 2 === 1 ? names : [...names].reverse();
        for (const name of order) {
          const tag = (n: number): string =>
            `run${i}.${name}.${scenario}${n > 1 ? `.try${n}` : ""}`;
          await keep(
            await measureQuietly(
              o,
              (n) =>
                loadOnce(o, launched.get(name)!, i, name, scenario, tag(n)),
            ),
          );
        }
      }
    } finally {
      for (const server of launched.values()) {
        if (typeof server !== "string") await stopServer(server.server);
      }
    }
  }
}

async function main(): Promise<void> {
  const o = parseOptions(Deno.args);
  if (o.table.length > 0) return await retabulate(o, o.table);
  if (Deno.build.os !== "linux") {
    throw new Error(
      `Cannot benchmark: the load generator needs Linux, not "${Deno.build.os}"`,
    );
  }
  await buildLoadgen();
  for (const name of o.servers) {
    const probe = SERVERS[name]!.probe;
    if (probe === undefined) continue;
    const ok = await run(probe);
    if (ok === null || ok.code !== 0) {
      console.log(`skipping ${name}: \`${probe.join(" ")}\` failed`);
      o.servers = o.servers.filter((s) => s !== name);
    }
  }
  const pins = await pinning(o);
  await Deno.mkdir(`${o.out}/logs`, { recursive: true });
  const about = await machine();
  const busy = await cpuBusy(1000);
  const header = [
    `# ${new Date().toISOString()} ${about}; cpu busy before start ${
      busy.toFixed(0)
    }%`,
    `# runs=${o.runs} dur=${o.dur} warm=${o.warm} hold=${o.hold} idle_conns=${o.idleConns} churn_conns=${o.churnConns}${
      o.alternate ? " alternate=1" : ""
    }`,
    `# pinning: server ${pins[0].join(" ") || "none"}, client ${
      pins[1].join(" ") || "none"
    }`,
    ...o.servers.map((s) => `# server ${s}: ${SERVERS[s]!.argv.join(" ")}`),
  ].join("\n");
  console.log(header.replaceAll("# ", ""));
  if (busy > 10) {
    console.log(
      "warning: other programs are running; they may skew the numbers",
    );
  }
  const resultsPath = `${o.out}/results.txt`;
  await Deno.writeTextFile(resultsPath, `${header}\n`);
  const records: Measurement[] = [];
  const started = performance.now();
  const keep = async (record: Measurement): Promise<void> => {
    records.push(record);
    console.log(`${label(record, o)} ${summary(record)}`);
    await Deno.writeTextFile(resultsPath, `${resultLine(record)}\n`, {
      append: true,
    });
    // After every measurement: an interrupted run can be tabulated.
    await Deno.writeTextFile(
      `${o.out}/results.json`,
      JSON.stringify(records, null, 1),
    );
  };
  if (o.alternate) {
    await alternate(o, pins, keep);
  } else {
    for (let i = 1; i <= o.runs; i++) {
      // Servers take turns within each scenario, in alternate order from one
      // run to the next, so drift in the machine's speed hits them alike.
      const order = i % 2 === 1 ? o.servers : [...o.servers].reverse();
      for (const scenario of o.scenarios) {
        for (const server of order) {
          if (!fits(scenario, server)) continue;
          await keep(
            await measureQuietly(
              o,
              (n) => measure(o, pins, i, server, scenario, n),
            ),
          );
        }
      }
    }
  }
  const markdown = report(records, o, about, orderOf(o));
  await Deno.writeTextFile(`${o.out}/table.md`, `${markdown}\n`);
  const again = records.reduce((n, r) => n + (r.attempts ?? 1) - 1, 0);
  console.log(
    `\n${markdown}\n\n${records.length} measurements (${again} more while other programs used the cpus) in ${
      ((performance.now() - started) / 60_000).toFixed(1)
    } min\nraw results: ${resultsPath}`,
  );
  await writeReport(records, o, markdown);
}

const SHOWN = new Set([
  "msgs_per_s",
  "p50_us",
  "p99_us",
  "mib_per_s",
  "kb_per_conn",
  "established",
  "setup_s",
  "conns_per_s",
  "srv_cpu_pct",
  "conn_errors",
  "run_errors",
  "mismatch",
  "conn_msgs_min",
  "conn_msgs_med",
  "noise_cpu_pct",
]);

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}
