// The suite's tables: medians over the runs, each server's median of
// per-run ratios to raw Deno and to the fair baseline, the server's CPU per
// unit of work, the flags for saturated clients and disturbed runs, the
// fairness chart, and earlier results tabulated again.

import { fairnessChart, type Series } from "./_chart.ts";
import { median } from "./_median.ts";
import {
  COST,
  CPU_PER_MESSAGE,
  FAIRNESS,
  fairness,
  METRICS,
  MSGS_PER_S,
  P99,
  ratios,
  values,
} from "./_metrics.ts";
import {
  BASE,
  FAIR,
  FAIR_BASE,
  type Measurement,
  type Options,
  SCENARIOS,
  SERVERS,
} from "./_suite.ts";
import { targetsTable } from "./_targets.ts";
import { checkPoolable, deriveNoise, readResults } from "./_results.ts";

/** CPU% that other programs used while `record` was measured. */
export function noiseOf(record: Measurement): number {
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
    return median(values(mine, MSGS_PER_S));
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

function withGap(lines: string[]): string[] {
  return lines.length === 0 ? lines : [...lines, ""];
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
    ...withGap(targetsTable(byScenario)),
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
      const parts = servers.filter((s) => s !== BASE && s !== FAIR_BASE)
        .flatMap((server) => {
          const mine = runs.get(server)!;
          const shown = [MSGS_PER_S, P99, CPU_PER_MESSAGE].flatMap((metric) => {
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
export async function writeReport(
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

/**
 * Prints the table of earlier runs again, from a results.json, or from a
 * results.txt (this harness's or ../shared/bench/run.sh's: no chart then).
 * Several sets are pooled: each set's runs are numbered after the last
 * set's, so every per-run ratio still pairs servers measured side by side.
 */
export async function retabulate(o: Options, paths: string[]): Promise<void> {
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

export function report(
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

export function orderOf(o: Options): string | undefined {
  return o.alternate
    ? "each scenario's servers kept running, the load generator alternating among them window by window"
    : undefined;
}
