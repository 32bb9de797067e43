// What the suite's tables measure in each scenario: each metric's value in
// one run, and each run's ratio to the baseline's run beside it.

import type { Measurement, Result } from "./_suite.ts";

/** One quantity a scenario reports, as the tables show it. */
export interface Metric {
  label: string;
  digits: number;
  /** No ratio when raw Deno's value is this small: it would mean nothing. */
  minBase?: number;
  value(r: Result): number | null;
}

// A metric read straight from one field of the load generator's result.
function field(label: string, key: string, digits: number): Metric {
  return {
    label,
    digits,
    value: (r) => {
      const value = Number(r[key]);
      return r[key] === undefined || !Number.isFinite(value) ? null : value;
    },
  };
}

/** Least served connection / median connection; `null` without the counts. */
export function fairness(r: Result): number | null {
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

/** Server CPU per echoed message, the ping-pong scenarios' cost. */
export const CPU_PER_MESSAGE: Metric = {
  label: "server CPU µs/msg",
  digits: 1,
  value: cpuPer("msgs_per_s"),
};

/** Messages echoed per second. */
export const MSGS_PER_S = field("msgs/s", "msgs_per_s", 0);

/** The 99th percentile round trip. */
export const P99 = field("p99 µs", "p99_us", 0);

/** Bulk's echoed MiB per second. */
export const MIB_PER_S = field("MiB/s", "mib_per_s", 0);

/** Idle's server RSS growth per connection. */
export const KIB_PER_CONN = field("KiB/conn", "kb_per_conn", 1);

// Every ping-pong scenario's metrics.
const PINGPONG: Metric[] = [
  MSGS_PER_S,
  field("p50 µs", "p50_us", 0),
  P99,
  field("max µs", "max_us", 0),
  CPU_PER_MESSAGE,
];

/** Least served connection over the median one. */
export const FAIRNESS: Metric = {
  label: "fairness",
  digits: 2,
  minBase: 0.05,
  value: fairness,
};

/** The headline cost of each scenario that has one (idle has no load). */
export const COST: Record<string, Metric> = {
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

/** Every metric of each scenario, in the order the tables list them. */
export const METRICS: Record<string, Metric[]> = {
  pp1: PINGPONG,
  pp100: [...PINGPONG, FAIRNESS],
  pp1000: [...PINGPONG, FAIRNESS],
  bulk: [MIB_PER_S, COST.bulk!],
  idle: [
    KIB_PER_CONN,
    field("setup s", "setup_s", 2),
  ],
  churn: [
    field("conn/s", "conns_per_s", 0),
    P99,
    COST.churn!,
  ],
  cores1: PINGPONG,
  cores2: PINGPONG,
};

/** `metric` of each of `runs` that has it. */
export function values(runs: Measurement[], metric: Metric): number[] {
  return runs.map((r) => metric.value(r.result!)).filter((v): v is number =>
    v !== null
  );
}

// Each server's run i against the baseline's run i, measured seconds apart,
// so drift in the machine's speed between runs cancels out; the table gives
// the median of these ratios and their spread.
export function ratios(
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
