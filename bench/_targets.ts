// This release's performance targets (docs/benchmarks.md, "The targets,
// measured"), and a verdict on each that a rerun should not overturn: the
// median of per-run ratios with a 95 % interval for it, so a median that
// sits on the bound reads "level", not "met" one day and "missed" the next.

import { median, medianInterval } from "./_median.ts";
import {
  CPU_PER_MESSAGE,
  FAIRNESS,
  KIB_PER_CONN,
  type Metric,
  MIB_PER_S,
  MSGS_PER_S,
  P99,
  ratios,
  values,
} from "./_metrics.ts";
import { BASE, FAIR_BASE, type Measurement } from "./_suite.ts";

interface Target {
  label: string;
  scenario: string;
  metric: Metric;
  /** The baseline the metric is a ratio to; `null`: the value itself. */
  base: string | null;
  bound: number;
  /** The target holds at or below `bound` (else at or above it). */
  atMost: boolean;
}

const TARGETS: Target[] = [
  {
    label: "pp1000 CPU µs/msg ≤ 1.0× the fair baseline",
    scenario: "pp1000",
    metric: CPU_PER_MESSAGE,
    base: FAIR_BASE,
    bound: 1,
    atMost: true,
  },
  {
    label: "pp1000 msgs/s ≥ 0.95× the fair baseline",
    scenario: "pp1000",
    metric: MSGS_PER_S,
    base: FAIR_BASE,
    bound: 0.95,
    atMost: false,
  },
  {
    label: "pp1000 p99 ≤ the fair baseline's",
    scenario: "pp1000",
    metric: P99,
    base: FAIR_BASE,
    bound: 1,
    atMost: true,
  },
  ...["pp100", "pp1"].map((scenario) => ({
    label: `${scenario} msgs/s ≥ 0.95× raw Deno`,
    scenario,
    metric: MSGS_PER_S,
    base: BASE,
    bound: 0.95,
    atMost: false,
  })),
  {
    label: "bulk MiB/s ≥ 0.95× raw Deno",
    scenario: "bulk",
    metric: MIB_PER_S,
    base: BASE,
    bound: 0.95,
    atMost: false,
  },
  {
    label: "fairness at pp1000 ≥ 0.95",
    scenario: "pp1000",
    metric: FAIRNESS,
    base: null,
    bound: 0.95,
    atMost: false,
  },
  {
    label: "idle ≤ 8 KiB per connection",
    scenario: "idle",
    metric: KIB_PER_CONN,
    base: null,
    bound: 8,
    atMost: true,
  },
];

/** The project's server: `deno task bench` calls it asyncore, run.sh project. */
const PROJECT = ["asyncore", "project"];

function verdict(target: Target, low: number, high: number): string {
  const [good, bad] = target.atMost ? [high, low] : [low, high];
  const holds = (v: number): boolean =>
    target.atMost ? v <= target.bound : v >= target.bound;
  if (holds(good)) return "met";
  if (!holds(bad)) return "missed";
  return "level";
}

/**
 * The targets' rows, for the project's server against the baselines that
 * ran beside it; none when the project's server did not run.
 */
export function targetsTable(
  byScenario: Map<string, Map<string, Measurement[]>>,
): string[] {
  const rows: string[] = [];
  for (const target of TARGETS) {
    const runs = byScenario.get(target.scenario);
    const server = PROJECT.find((name) => (runs?.get(name)?.length ?? 0) > 0);
    if (runs === undefined || server === undefined) continue;
    const mine = runs.get(server)!;
    let sample: number[];
    if (target.base === null) sample = values(mine, target.metric);
    else {
      const base = runs.get(target.base) ?? [];
      if (base.length === 0) continue;
      sample = ratios(mine, base, target.metric);
    }
    const mid = median(sample);
    const interval = medianInterval(sample);
    if (mid === null) continue;
    // Ratios turn on the third decimal near their bounds; values on the second.
    const fixed = (v: number): string =>
      target.base === null ? v.toFixed(2) : `${v.toFixed(3)}×`;
    const [range, call] = interval === null ? ["-", "too few runs"] : [
      `${fixed(interval.low)}–${fixed(interval.high)} (${
        (100 * interval.coverage).toFixed(1)
      } %)`,
      verdict(target, interval.low, interval.high),
    ];
    rows.push(
      `| ${target.label} | ${sample.length} | ${
        fixed(mid)
      } | ${range} | ${call} |`,
    );
  }
  if (rows.length === 0) return [];
  return [
    "Targets (docs/benchmarks.md, \"The targets, measured\"): the median of per-run ratios (or values), and an interval that holds the true median with the coverage given, from the runs' order statistics, whatever the noise's shape. Met: the whole interval is on the target's side; missed: on the other; level: it straddles the bound, and another set of runs may land either side.",
    "",
    "| target | runs | median | interval for the median (coverage) | verdict |",
    "| --- | ---: | ---: | ---: | --- |",
    ...rows,
  ];
}
