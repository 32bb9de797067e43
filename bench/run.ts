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

import { fairnessChart, type Series } from "./_chart.ts";
import { median } from "./_median.ts";
import { type Server, startServer, stopServer } from "./_server.ts";
import { formatSummary, summarize } from "./_profile.ts";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);
const LOADGEN_SRC = `${ROOT}bench/loadgen.c`;
const LOADGEN = `${ROOT}bench/loadgen/loadgen`;
/** The project's server under test (every entry that runs it uses this). */
const ECHO_SERVER = `${ROOT}bench/echo_server.ts`;
const BASE = "raw_deno";
// Where raw Deno's msgs/s come from a hot set served while others wait
// (fairness below FAIR), raw Deno with capped ticks is the fair baseline.
const FAIR_BASE = "raw_deno_fair";
const FAIR = 0.9;

interface Options {
  runs: number;
  dur: number;
  warm: number;
  hold: number;
  idleConns: number;
  churnConns: number;
  scenarios: string[];
  servers: string[];
  serverCpu: number;
  clientCpu: number;
  maxNoise: number;
  retries: number;
  out: string;
  /**
   * Results (results.json or results.txt) to tabulate again instead of
   * measuring; several are pooled, their runs numbered one after another.
   */
  table: string[];
  /** Record and rank a CPU profile of each Deno server. */
  profile: boolean;
  /**
   * Keep each scenario's servers running and alternate the load generator
   * among them, one timed window per server and run.
   */
  alternate: boolean;
  /** Where the pp1000 fairness chart goes; "" for nowhere. */
  svg: string;
  /** Where the markdown table goes too, if anywhere. */
  markdown: string | undefined;
}

interface Scenario {
  title(o: Options): string;
  args(o: Options): string[];
  /** Needs one descriptor per connection in the server. */
  manyFiles?: boolean;
  /**
   * Run the server as this many processes sharing the port (`--workers N`
   * when above 1), with nothing pinned: they need every core.
   */
  workers?: number;
}

const SCENARIOS: Record<string, Scenario> = {
  pp1: {
    title: () => "ping-pong, 1 connection, 64 B messages",
    args: (o) => pingpong(1, o),
  },
  pp100: {
    title: () => "ping-pong, 100 connections",
    args: (o) => pingpong(100, o),
  },
  pp1000: {
    title: () => "ping-pong, 1000 connections",
    args: (o) => pingpong(1000, o),
  },
  bulk: {
    title: () => "1 connection streaming 64 KiB writes, MiB/s echoed",
    args: (o) => ["-m", "bulk", "-c", "1", "-s", "65536", ...timing(o)],
  },
  idle: {
    title: (o) =>
      `${o.idleConns} connections after one 32 B echo each: server RSS growth per connection`,
    args: (o) => ["-m", "idle", "-c", `${o.idleConns}`, "-s", "32", ...hold(o)],
    manyFiles: true,
  },
  churn: {
    title: (o) =>
      `${o.churnConns} concurrent cycles of connect, one 64 B echo, close`,
    args: (
      o,
    ) => ["-m", "churn", "-c", `${o.churnConns}`, "-s", "64", ...timing(o)],
  },
  cores1: {
    title: () =>
      "ping-pong, 100 connections, 1 server process on core 0, the load generator on the last core (nothing pinned below 3 cores)",
    args: (o) => pingpong(100, o),
    workers: 1,
  },
  cores2: {
    title: () =>
      "ping-pong, 100 connections, 2 server processes sharing the port (--workers 2) on cores 0-1, the load generator on the last core (nothing pinned below 3 cores: then it competes with the server for them)",
    args: (o) => pingpong(100, o),
    workers: 2,
  },
};

function timing(o: Options): string[] {
  return ["-d", `${o.dur}`, "-w", `${o.warm}`];
}

function hold(o: Options): string[] {
  return ["-t", `${o.hold}`];
}

function pingpong(conns: number, o: Options): string[] {
  return ["-m", "pingpong", "-c", `${conns}`, "-s", "64", ...timing(o)];
}

interface ServerSpec {
  label: string;
  argv: string[];
  /** Extra environment for the server process. */
  env?: Record<string, string>;
  /** A command whose success means the server can run here. */
  probe?: string[];
  /** Takes `--workers N` (the `cores2` scenario). */
  workers?: boolean;
}

const FAIR_TICKS = { DENO_TOKIO_MAX_IO_EVENTS_PER_TICK: "128" };

const SERVERS: Record<string, ServerSpec> = {
  asyncore: {
    label: "asyncore",
    argv: [Deno.execPath(), "run", "-A", ECHO_SERVER, "0"],
    workers: true,
  },
  raw_deno: {
    label: "raw Deno",
    argv: [Deno.execPath(), "run", "-A", `${ROOT}bench/raw_deno_echo.ts`, "0"],
    workers: true,
  },
  // The same two servers with the runtime capped at 128 I/O events per tick:
  // fair service at some cost in throughput (see docs/design.md on fairness).
  asyncore_fair: {
    label: "asyncore, capped ticks",
    argv: [Deno.execPath(), "run", "-A", ECHO_SERVER, "0"],
    env: FAIR_TICKS,
    workers: true,
  },
  raw_deno_fair: {
    label: "raw Deno, capped ticks",
    argv: [Deno.execPath(), "run", "-A", `${ROOT}bench/raw_deno_echo.ts`, "0"],
    env: FAIR_TICKS,
    workers: true,
  },
  // The project's server with V8's young generation capped at 4 MiB a
  // semi-space: what many idle connections cost when V8 does not grow it
  // (see docs/benchmarks.md). Not in the default set: --servers.
  asyncore_young4: {
    label: "asyncore, young gen 4 MiB",
    argv: [
      Deno.execPath(),
      "run",
      "-A",
      "--v8-flags=--max-semi-space-size=4",
      ECHO_SERVER,
      "0",
    ],
    workers: true,
  },
  py_asyncore: {
    label: "Python asyncore",
    argv: ["python3", `${ROOT}bench/servers/py_asyncore_echo.py`, "0"],
    probe: ["python3", "-W", "ignore", "-c", "import asyncore"],
  },
  node_net: {
    label: "Node net",
    argv: ["node", `${ROOT}bench/servers/node_net_echo.mjs`, "0"],
    probe: ["node", "--version"],
  },
};
const ANCHORS = ["raw_deno_fair", "asyncore_fair", "py_asyncore", "node_net"];

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

type Result = Record<string, string>;

interface Measurement {
  run: number;
  server: string;
  scenario: string;
  result: Result | null;
  error?: string;
  /** The core the load generator was pinned to; `null`: not pinned. */
  clientCore?: number | null;
  /** Ping-pong: messages each connection completed, least first. */
  perConnection?: number[];
  /** How many times it was measured (again while others used the cpus). */
  attempts?: number;
}

function parseResult(text: string): Result | null {
  const line = text.split("\n").filter((l) => l.startsWith("RESULT ")).at(-1);
  if (line === undefined) return null;
  const result: Result = {};
  for (const pair of line.slice(7).trim().split(/\s+/)) {
    const eq = pair.indexOf("=");
    if (eq > 0) result[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return result;
}

function parseConnectionCounts(text: string): number[] | undefined {
  const line = text.split("\n").find((l) => l.startsWith("CONN_MSGS"));
  return line?.split(/\s+/).slice(1).filter((w) => w !== "").map(Number);
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

// ---------------------------------------------------------------- the table

interface Metric {
  label: string;
  digits: number;
  /** No ratio when raw Deno's value is this small: it would mean nothing. */
  minBase?: number;
  value(r: Result): number | null;
}

function field(key: string): (r: Result) => number | null {
  return (r) => {
    const value = Number(r[key]);
    return r[key] === undefined || !Number.isFinite(value) ? null : value;
  };
}

function fairness(r: Result): number | null {
  const min = Number(r.conn_msgs_min);
  const med = Number(r.conn_msgs_med);
  if (med > 0) return min / med;
  // Most connections got no reply at all in the timed window.
  return Number(r.msgs_per_s) > 0 ? 0 : null;
}

// Server CPU time per unit of work (microseconds): what the server spends,
// which a saturated load generator cannot hide the way it hides a rate.
function cpuPer(
  rateKey: string,
  unitsPerRate = 1,
): (r: Result) => number | null {
  return (r) => {
    const cpu = Number(r.srv_cpu_pct);
    const rate = Number(r[rateKey]) * unitsPerRate;
    return cpu >= 0 && rate > 0 ? cpu / 100 / rate * 1e6 : null;
  };
}

const CPU_PER_MESSAGE: Metric = {
  label: "server CPU µs/msg",
  digits: 1,
  value: cpuPer("msgs_per_s"),
};

const PINGPONG: Metric[] = [
  { label: "msgs/s", digits: 0, value: field("msgs_per_s") },
  { label: "p50 µs", digits: 0, value: field("p50_us") },
  { label: "p99 µs", digits: 0, value: field("p99_us") },
  { label: "max µs", digits: 0, value: field("max_us") },
  CPU_PER_MESSAGE,
];

const FAIRNESS: Metric = {
  label: "fairness",
  digits: 2,
  minBase: 0.05,
  value: fairness,
};

/** The headline cost of each scenario that has one (idle has no load). */
const COST: Record<string, Metric> = {
  pp1: CPU_PER_MESSAGE,
  pp100: CPU_PER_MESSAGE,
  pp1000: CPU_PER_MESSAGE,
  // MiB/s × 16 = 64 KiB chunks/s: the chunk is bulk's message.
  bulk: {
    label: "server CPU µs/64 KiB",
    digits: 1,
    value: cpuPer("mib_per_s", 16),
  },
  churn: {
    label: "server CPU µs/conn",
    digits: 1,
    value: cpuPer("conns_per_s"),
  },
  cores1: CPU_PER_MESSAGE,
  cores2: CPU_PER_MESSAGE,
};

const METRICS: Record<string, Metric[]> = {
  pp1: PINGPONG,
  pp100: [...PINGPONG, FAIRNESS],
  pp1000: [...PINGPONG, FAIRNESS],
  bulk: [{ label: "MiB/s", digits: 0, value: field("mib_per_s") }, COST.bulk!],
  idle: [
    { label: "KiB/conn", digits: 1, value: field("kb_per_conn") },
    { label: "setup s", digits: 2, value: field("setup_s") },
  ],
  churn: [
    { label: "conn/s", digits: 0, value: field("conns_per_s") },
    { label: "p99 µs", digits: 0, value: field("p99_us") },
    COST.churn!,
  ],
  cores1: PINGPONG,
  cores2: PINGPONG,
};

/** CPU% that other programs used while `record` was measured. */
function noiseOf(record: Measurement): number {
  return Number(record.result?.noise_cpu_pct ?? 0);
}

// Above this busy% of its core, the load generator is the bottleneck (or
// shares it): the rates then partly measure the client, the server's CPU
// time per message does not.
const SATURATED = 90;

/** Busy% of the load generator's core over the timed window, if known. */
function clientBusy(record: Measurement, o: Options): number | null {
  // Results from before clientCore was recorded: the default pinning.
  const core = record.clientCore !== undefined
    ? record.clientCore
    : SCENARIOS[record.scenario]?.workers
    ? null
    : o.clientCpu;
  const busy = record.result?.core_busy_pct?.split("/")[core ?? -1];
  return busy === undefined ? null : Number(busy);
}

/** Why a run does not count, or `null` when it does. */
function failure(record: Measurement, o: Options): string | null {
  const r = record.result;
  if (r === null) return record.error ?? "no result";
  if (r.error) return r.error;
  if (r.srv_alive === "0") return "server died";
  if (Number(r.mismatch) > 0) return "echo mismatch";
  if (record.scenario === "idle" && Number(r.established) < o.idleConns) {
    return `only ${r.established} of ${o.idleConns} connections`;
  }
  return null;
}

function format(value: number | null, digits: number): string {
  if (value === null) return "-";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** The runs of one server and scenario that count, with notes on the rest. */
function counted(
  records: Measurement[],
  o: Options,
  notes: string[],
): Measurement[] {
  const valid: Measurement[] = [];
  for (const record of records) {
    const why = failure(record, o);
    if (why === null) valid.push(record);
    else {notes.push(
        `${record.server} ${record.scenario} run ${record.run}: ${why}`,
      );}
  }
  // Runs disturbed by other programs count only when no other run does.
  const quiet = valid.filter((r) => noiseOf(r) <= o.maxNoise);
  for (const record of valid) {
    const noise = noiseOf(record);
    if (noise <= o.maxNoise) continue;
    notes.push(
      `${record.server} ${record.scenario} run ${record.run}: other programs used ${noise}% cpu meanwhile${
        quiet.length > 0 ? "; left out" : "; counted (no quiet run)"
      }`,
    );
  }
  const good = quiet.length > 0 ? quiet : valid;
  const errors = good.reduce(
    (sum, r) =>
      sum + Number(r.result!.conn_errors ?? 0) +
      Number(r.result!.run_errors ?? 0),
    0,
  );
  if (errors > 0) {
    notes.push(
      `${records[0]!.server} ${
        records[0]!.scenario
      }: ${errors} connection errors over ${good.length} runs`,
    );
  }
  return good;
}

function values(runs: Measurement[], metric: Metric): number[] {
  return runs.map((r) => metric.value(r.result!)).filter((v): v is number =>
    v !== null
  );
}

// Each server's run i against the baseline's run i, measured seconds apart,
// so drift in the machine's speed between runs cancels out; the table gives
// the median of these ratios and their spread.
function ratios(
  runs: Measurement[],
  base: Measurement[],
  metric: Metric,
): number[] {
  const out: number[] = [];
  for (const run of runs) {
    const peer = base.find((b) => b.run === run.run);
    if (peer === undefined) continue;
    const value = metric.value(run.result!);
    const reference = metric.value(peer.result!);
    if (value === null || reference === null) continue;
    if (reference <= (metric.minBase ?? 0)) continue;
    out.push(value / reference);
  }
  return out;
}

/** `0.98× [0.91–1.05]`: the median per-run ratio and its range. */
function formatRatios(rs: number[]): string | null {
  const mid = median(rs);
  if (mid === null) return null;
  if (rs.length < 2) return `${mid.toFixed(2)}×`;
  return `${mid.toFixed(2)}× [${Math.min(...rs).toFixed(2)}–${
    Math.max(...rs).toFixed(2)
  }]`;
}

/** Median busy% of the client's core, and how many runs saturated it. */
function clientCell(runs: Measurement[], o: Options): string {
  const busy = runs.map((r) => clientBusy(r, o)).filter((b): b is number =>
    b !== null
  );
  const mid = median(busy);
  if (mid === null) return "-";
  const hot = busy.filter((b) => b >= SATURATED).length;
  return hot === 0
    ? `${mid.toFixed(0)} %`
    : `${mid.toFixed(0)} %, saturated in ${hot}/${busy.length}`;
}

// cores2 / cores1 msgs/s of each server that ran both (valid runs only).
function scaling(records: Measurement[], o: Options): string {
  const rate = (server: string, scenario: string): number | null => {
    const mine = records.filter((r) =>
      r.server === server && r.scenario === scenario && failure(r, o) === null
    );
    return median(values(mine, PINGPONG[0]!));
  };
  const parts = o.servers.flatMap((server) => {
    const one = rate(server, "cores1");
    const two = rate(server, "cores2");
    return one !== null && two !== null
      ? [`${SERVERS[server]!.label} ${(two / one).toFixed(2)}×`]
      : [];
  });
  return parts.length > 0 ? parts.join(", ") : "-";
}

/** Each scenario's counted runs, by server; notes on the runs left out. */
function countedRuns(
  records: Measurement[],
  o: Options,
  notes: string[],
): Map<string, Map<string, Measurement[]>> {
  const byScenario = new Map<string, Map<string, Measurement[]>>();
  for (const scenario of o.scenarios) {
    const runs = new Map<string, Measurement[]>();
    for (const server of o.servers) {
      const mine = records.filter((r) =>
        r.server === server && r.scenario === scenario
      );
      runs.set(server, mine.length > 0 ? counted(mine, o, notes) : []);
    }
    byScenario.set(scenario, runs);
  }
  return byScenario;
}

// The headline: server CPU per unit of work in every scenario with a load,
// against raw Deno and against raw Deno with capped ticks, one server a row.
function costTable(
  byScenario: Map<string, Map<string, Measurement[]>>,
  o: Options,
): string[] {
  const fair = o.servers.includes(FAIR_BASE);
  const head = [
    "scenario",
    "server",
    "server CPU",
    `× ${SERVERS[BASE]!.label}`,
    ...(fair ? [`× ${SERVERS[FAIR_BASE]!.label}`] : []),
    "client core busy",
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => (i < 2 ? "---" : "---:")).join(" | ")} |`,
  ];
  for (const [scenario, runs] of byScenario) {
    const metric = COST[scenario];
    if (metric === undefined) continue;
    const unit = metric.label.replace("server CPU ", "");
    for (const server of o.servers) {
      const mine = runs.get(server)!;
      if (mine.length === 0) continue;
      const against = (base: string): string =>
        server === base
          ? "-"
          : formatRatios(ratios(mine, runs.get(base) ?? [], metric)) ?? "-";
      lines.push(
        `| ${scenario} | ${SERVERS[server]!.label} | ${
          format(median(values(mine, metric)), metric.digits)
        } ${unit} | ${against(BASE)} | ${
          fair ? `${against(FAIR_BASE)} | ` : ""
        }${clientCell(mine, o)} |`,
      );
    }
  }
  return lines;
}

function table(records: Measurement[], o: Options): string {
  const servers = o.servers;
  const notes: string[] = [];
  const byScenario = countedRuns(records, o, notes);
  const head = ["scenario", "metric", ...servers.map((s) => SERVERS[s]!.label)];
  const lines = [
    `Server CPU per unit of work, lower is better: medians over the runs; × is the median of per-run ratios [lowest–highest]. Client core busy: the load generator's core; at ${SATURATED} % or more it is saturated, and the rates there partly measure the client, not the server.`,
    "",
    ...costTable(byScenario, o),
    "",
    "Every metric: medians over the runs, (× raw Deno, median of per-run ratios [lowest–highest]).",
    "",
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => (i < 2 ? "---" : "---:")).join(" | ")} |`,
  ];
  const fair: string[] = [];
  const saturated: string[] = [];
  for (const [scenario, runs] of byScenario) {
    const base = runs.get(BASE);
    for (const metric of METRICS[scenario]!) {
      const cells = servers.map((server) => {
        const mine = runs.get(server)!;
        const text = format(median(values(mine, metric)), metric.digits);
        if (server === BASE || base === undefined) return text;
        const r = formatRatios(ratios(mine, base, metric));
        return r === null ? text : `${text} (${r})`;
      });
      lines.push(`| ${scenario} | ${metric.label} | ${cells.join(" | ")} |`);
    }
    if (COST[scenario] !== undefined) {
      const cells = servers.map((server) => clientCell(runs.get(server)!, o));
      lines.push(`| ${scenario} | client core busy | ${cells.join(" | ")} |`);
    }
    const hot = servers.flatMap((server) => {
      const which = runs.get(server)!.filter((r) =>
        (clientBusy(r, o) ?? 0) >= SATURATED
      ).map((r) => r.run);
      return which.length === 0
        ? []
        : [`${SERVERS[server]!.label} ${which.join(", ")}`];
    });
    if (hot.length > 0) saturated.push(`${scenario}: ${hot.join("; ")}`);
    const fairBase = runs.get(FAIR_BASE);
    const baseFairness = METRICS[scenario]!.includes(FAIRNESS) &&
        base !== undefined
      ? median(values(base, FAIRNESS))
      : null;
    if (
      fairBase !== undefined && baseFairness !== null && baseFairness < FAIR
    ) {
      const [rate, , p99] = PINGPONG;
      const parts = servers.filter((s) => s !== BASE && s !== FAIR_BASE)
        .flatMap((server) => {
          const mine = runs.get(server)!;
          const shown = [rate!, p99!, CPU_PER_MESSAGE].flatMap((metric) => {
            const r = formatRatios(ratios(mine, fairBase, metric));
            return r === null ? [] : [`${metric.label} ${r}`];
          });
          return shown.length === 0
            ? []
            : [`${SERVERS[server]!.label} ${shown.join(", ")}`];
        });
      if (parts.length > 0) fair.push(`${scenario}: ${parts.join("; ")}`);
    }
  }
  lines.push("");
  for (const scenario of o.scenarios) {
    lines.push(`- ${scenario}: ${SCENARIOS[scenario]!.title(o)}`);
  }
  if (o.scenarios.includes("cores1") && o.scenarios.includes("cores2")) {
    lines.push(`- scaling from 1 to 2 cores: ${scaling(records, o)}`);
  }
  if (fair.length > 0) {
    lines.push(
      `- where raw Deno's fairness is below ${FAIR}, against ${
        SERVERS[FAIR_BASE]!.label
      } (the fair baseline), run by run: ${fair.join(". ")}`,
    );
  }
  if (saturated.length > 0) {
    lines.push(
      `- runs whose load generator's core was saturated (≥ ${SATURATED} % busy): ${
        saturated.join(". ")
      }`,
    );
  }
  const text = lines.join("\n");
  return notes.length === 0
    ? text
    : `${text}\n\nNot counted, disturbed or with errors:\n${
      notes.map((n) => `- ${n}`).join("\n")
    }`;
}

// The chart's colors stay with their servers from one run to the next.
const COLORS: Record<string, string> = {
  [BASE]: "#c0392b",
  asyncore: "#1f6fb2",
  [FAIR_BASE]: "#7f8c8d",
  asyncore_fair: "#27ae60",
};

/**
 * Messages per connection at pp1000, one line per server: its counted run
 * with the median fairness.
 */
function fairnessSeries(records: Measurement[], o: Options): Series[] {
  return o.servers.flatMap((server) => {
    const runs = counted(
      records.filter((r) => r.server === server && r.scenario === "pp1000"),
      o,
      [],
    ).filter((r) => (r.perConnection?.length ?? 0) > 0);
    if (runs.length === 0) return [];
    const byFairness = runs.map((r) => [fairness(r.result!) ?? 0, r] as const)
      .sort((a, b) => a[0] - b[0]);
    const [fair, pick] = byFairness[(byFairness.length - 1) >> 1]!;
    return [{
      label: `${SERVERS[server]!.label}: fairness ${fair.toFixed(2)}, ${
        format(Number(pick.result!.msgs_per_s), 0)
      } msgs/s (run ${pick.run})`,
      counts: pick.perConnection!,
      ...(server in COLORS ? { color: COLORS[server]! } : {}),
    }];
  });
}

/** The markdown table and the fairness chart, where the options ask. */
async function writeReport(
  records: Measurement[],
  o: Options,
  markdown: string,
): Promise<void> {
  if (o.markdown !== undefined) {
    await Deno.writeTextFile(o.markdown, `${markdown}\n`);
    console.log(`table: ${o.markdown}`);
  }
  const series = fairnessSeries(records, o);
  if (o.svg === "" || series.length === 0) return;
  const dir = o.svg.slice(0, o.svg.lastIndexOf("/") + 1);
  if (dir !== "") await Deno.mkdir(dir, { recursive: true });
  const runs = Math.max(...records.map((r) => r.run));
  await Deno.writeTextFile(
    o.svg,
    fairnessChart(
      series,
      "Messages served per connection: ping-pong, 1000 connections",
      `${o.dur} s timed; of ${runs} run(s), each server's with the median fairness (least served / median connection)`,
    ),
  );
  console.log(`fairness chart: ${o.svg}`);
}

// ---------------------------------------------------------------- main

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

// One line per measurement, `run=N server=S scenario=X RESULT key=value ...`,
// easy to grep and to tabulate again.
function resultLine(record: Measurement): string {
  const r = record.result;
  const fields = r === null
    ? `error=${(record.error ?? "failed").replace(/\s+/g, "_")}`
    : Object.entries(r).map(([key, value]) => `${key}=${value}`).join(" ");
  return `run=${record.run} server=${record.server} scenario=${record.scenario} RESULT ${fields}`;
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

/**
 * The measurements in a results.txt: one `run=N server=S scenario=X RESULT
 * k=v ...` line each, as this harness and ../shared/bench/run.sh write them.
 */
function parseResultLines(text: string): Measurement[] {
  return text.split("\n").flatMap((line) => {
    const at = line.indexOf(" RESULT ");
    if (line.startsWith("#") || at < 0) return [];
    const head = Object.fromEntries(
      line.slice(0, at).split(/\s+/).map((pair) => pair.split("=", 2)),
    );
    const result = parseResult(line.slice(at + 1));
    if (!head.run || !head.server || !head.scenario) return [];
    return [{
      run: Number(head.run),
      server: head.server,
      scenario: head.scenario,
      result,
      ...(result?.error ? { error: result.error } : {}),
    }];
  });
}

/** One set of results read back, with the header that describes it. */
interface ResultSet {
  path: string;
  /** Its results.json and results.txt are one set: both name it alike. */
  key: string;
  records: Measurement[];
  /** The header of its results.txt ("" when a results.json has none). */
  head: string;
  /** ../shared/bench/run.sh's results: they carry no noise figure. */
  shared: boolean;
  dur: number | undefined;
  alternate: boolean;
}

async function readResults(path: string): Promise<ResultSet> {
  const text = await Deno.readTextFile(path);
  const json = path.endsWith(".json");
  const records = json
    ? JSON.parse(text) as Measurement[]
    : parseResultLines(text);
  if (records.length === 0) {
    throw new Error(`Cannot tabulate ${path}: it holds no results`);
  }
  // The machine and the timing are in the header of results.txt (beside a
  // results.json); run.sh's header gives no machine.
  let head = text;
  if (json) {
    try {
      const dir = path.slice(0, path.lastIndexOf("/") + 1);
      head = await Deno.readTextFile(`${dir}results.txt`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      head = "";
    }
  }
  const dur = /\bdur=([\d.]+)/i.exec(head)?.[1];
  const real = await Deno.realPath(path);
  return {
    path,
    key: real.replace(/\/results\.(json|txt)$/, "/results"),
    records,
    head,
    shared: !records.some((r) => r.result?.noise_cpu_pct !== undefined),
    dur: dur === undefined ? undefined : Number(dur),
    alternate: /\balternate=1\b/.test(head),
  };
}

// Sets measured differently would make their per-run ratios mean different
// things: only sets of one harness and one timing are pooled.
function checkPoolable(sets: ResultSet[]): void {
  const [first] = sets;
  for (const [i, set] of sets.entries()) {
    const twice = sets.findIndex((other) => other.key === set.key);
    if (twice < i) {
      throw new Error(
        `Cannot pool ${set.path} with ${
          sets[twice]!.path
        }: they are one set of runs, which would count twice`,
      );
    }
  }
  for (const set of sets.slice(1)) {
    const differs = set.shared !== first!.shared
      ? "one harness's results with the other's"
      : set.dur !== first!.dur
      ? `runs of ${set.dur} s with runs of ${first!.dur} s`
      : set.alternate !== first!.alternate
      ? "alternating windows with runs of fresh servers"
      : undefined;
    if (differs !== undefined) {
      throw new Error(
        `Cannot pool ${set.path} with ${first!.path}: it would mix ${differs}`,
      );
    }
  }
}

/**
 * Prints the table of earlier runs again, from a results.json, or from a
 * results.txt (this harness's or ../shared/bench/run.sh's: no chart then).
 * Several sets are pooled: each set's runs are numbered after the last
 * set's, so every per-run ratio still pairs servers measured side by side.
 */
async function retabulate(o: Options, paths: string[]): Promise<void> {
  const sets = await Promise.all(paths.map(readResults));
  checkPoolable(sets);
  const records: Measurement[] = [];
  let offset = 0;
  for (const set of sets) {
    for (const record of set.records) {
      records.push({ ...record, run: record.run + offset });
    }
    offset += Math.max(...set.records.map((r) => r.run));
  }
  const seen = (key: "server" | "scenario"): string[] => [
    ...new Set(records.map((r) => r[key])),
  ];
  const servers = seen("server");
  for (const name of servers) {
    SERVERS[name] ??= { label: name, argv: [] };
  }
  o.servers = [
    ...o.servers.filter((s) => servers.includes(s)),
    ...servers.filter((s) => !o.servers.includes(s)),
  ];
  o.scenarios = seen("scenario").filter((s) => s in SCENARIOS);
  o.runs = offset;
  const [first] = sets;
  const about = /^# \S+ (.+); cpu busy/m.exec(first!.head)?.[1] ??
    "see results.txt";
  o.dur = first!.dur ?? o.dur;
  o.alternate = first!.alternate;
  const shared = first!.shared;
  if (shared) {
    for (const record of records) {
      if (record.result) deriveNoise(record.result);
    }
  }
  // bench/shared_interleaved.sh marks its results with a header line.
  const runShOrder =
    sets.every((set) => /^# shared_interleaved\b/m.test(set.head))
      ? "../shared/bench/run.sh driven one scenario at a time by bench/shared_interleaved.sh (the servers of a scenario seconds apart, in reverse order every other run"
      : "the order of ../shared/bench/run.sh (each server's scenarios in a row";
  const order = shared
    ? `${runShOrder}, no wait for idle cpus; other programs' CPU use, hypervisor steal included, derived from its load generator's figures, and runs above ${o.maxNoise} % left out)`
    : orderOf(o);
  const pooled = sets.length > 1
    ? ` (${sets.length} sets of results pooled, each set's runs numbered after the last set's: ${
      sets.map((set) => set.path).join(", ")
    })`
    : "";
  const markdown = report(records, o, about, order, pooled);
  console.log(markdown);
  await writeReport(records, o, markdown);
}

// run.sh's load generator prints no noise figure, but the one ours prints
// follows from what it does print: the busy time of all cores (softirq and
// hypervisor steal included) beyond what the server and the load generator
// used.
function deriveNoise(result: Result): void {
  const busy = result.core_busy_pct?.split("/").map(Number);
  const server = Number(result.srv_cpu_pct);
  const client = Number(result.cli_cpu_pct);
  if (busy === undefined || !Number.isFinite(server + client)) return;
  const total = busy.reduce((sum, b) => sum + b, 0);
  result.noise_cpu_pct = String(Math.max(0, total - server - client));
}

function report(
  records: Measurement[],
  o: Options,
  about: string,
  order = "the servers taking turns within each scenario and run",
  pooled = "",
): string {
  return [
    `${o.runs} run(s)${pooled}, ${o.dur} s timed each, ${order}.`,
    `Higher is better for msgs/s, fairness, MiB/s, conn/s; lower for µs, KiB/conn, s.`,
    `Machine: ${about}.`,
    "",
    table(records, o),
  ].join("\n");
}

// A scenario run as several processes needs a server that can be.
function fits(scenario: string, server: string): boolean {
  return (SCENARIOS[scenario]!.workers ?? 0) <= 1 || !!SERVERS[server]!.workers;
}

function orderOf(o: Options): string | undefined {
  return o.alternate
    ? "each scenario's servers kept running, the load generator alternating among them window by window"
    : undefined;
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
