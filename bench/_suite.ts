// What every part of the echo suite shares: its options, its scenarios (the
// load generator's arguments for each), its servers (how each is started),
// and the shape of one measurement.

export const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);
/** The project's server under test (every entry that runs it uses this). */
export const ECHO_SERVER = `${ROOT}bench/echo_server.ts`;
export const BASE = "raw_deno";
// Where raw Deno's msgs/s come from a hot set served while others wait
// (fairness below FAIR), raw Deno with capped ticks is the fair baseline.
export const FAIR_BASE = "raw_deno_fair";
export const FAIR = 0.9;

export interface Options {
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

export interface Scenario {
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

export const SCENARIOS: Record<string, Scenario> = {
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

export interface ServerSpec {
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

export const SERVERS: Record<string, ServerSpec> = {
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

export const ANCHORS = [
  "raw_deno_fair",
  "asyncore_fair",
  "py_asyncore",
  "node_net",
];

export type Result = Record<string, string>;

export interface Measurement {
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

// A scenario run as several processes needs a server that can be.
export function fits(scenario: string, server: string): boolean {
  return (SCENARIOS[scenario]!.workers ?? 0) <= 1 || !!SERVERS[server]!.workers;
}
