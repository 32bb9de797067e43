// Results as text: the load generator's RESULT line read into a record, a
// record written as one line of results.txt, and results files read back
// (this harness's and ../shared/bench/run.sh's) to be tabulated again.

import type { Measurement, Result } from "./_suite.ts";

// The last RESULT line of the load generator's output, as key=value pairs.
export function parseResult(text: string): Result | null {
  const line = text.split("\n").filter((l) => l.startsWith("RESULT ")).at(-1);
  if (line === undefined) return null;
  const result: Result = {};
  for (const pair of line.slice(7).trim().split(/\s+/)) {
    const eq = pair.indexOf("=");
    if (eq > 0) result[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return result;
}

// Ping-pong's CONN_MSGS line: the messages each connection completed.
export function parseConnectionCounts(text: string): number[] | undefined {
  const line = text.split("\n").find((l) => l.startsWith("CONN_MSGS"));
  return line?.split(/\s+/).slice(1).filter((w) => w !== "").map(Number);
}

// One line per measurement, `run=N server=S scenario=X RESULT key=value ...`,
// easy to grep and to tabulate again.
export function resultLine(record: Measurement): string {
  const r = record.result;
  const fields = r === null
    ? `error=${(record.error ?? "failed").replace(/\s+/g, "_")}`
    : Object.entries(r).map(([key, value]) => `${key}=${value}`).join(" ");
  return `run=${record.run} server=${record.server} scenario=${record.scenario} RESULT ${fields}`;
}

/**
 * The measurements in a results.txt: one `run=N server=S scenario=X RESULT
 * k=v ...` line each, as this harness and ../shared/bench/run.sh write them.
 */
export function parseResultLines(text: string): Measurement[] {
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
export interface ResultSet {
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

export async function readResults(path: string): Promise<ResultSet> {
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
export function checkPoolable(sets: ResultSet[]): void {
  const [first] = sets;
  const seen = new Map<string, string>();
  for (const set of sets) {
    const earlier = seen.get(set.key);
    if (earlier !== undefined) {
      throw new Error(
        `Cannot pool ${set.path} with ${earlier}: they are one set of runs, which would count twice`,
      );
    }
    seen.set(set.key, set.path);
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

// run.sh's load generator prints no noise figure, but the one ours prints
// follows from what it does print: the busy time of all cores (softirq and
// hypervisor steal included) beyond what the server and the load generator
// used.
export function deriveNoise(result: Result): void {
  const busy = result.core_busy_pct?.split("/").map(Number);
  const server = Number(result.srv_cpu_pct);
  const client = Number(result.cli_cpu_pct);
  if (busy === undefined || !Number.isFinite(server + client)) return;
  const total = busy.reduce((sum, b) => sum + b, 0);
  result.noise_cpu_pct = String(Math.max(0, total - server - client));
}
