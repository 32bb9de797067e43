// Reads the V8 CPU profiles that `deno run --cpu-prof` writes and ranks
// functions by self time: where a server's CPU went during one measurement.

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface Profile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  timeDeltas: number[];
}

/** One line of the ranking: share of samples, then `name file:line`. */
export interface Hotspot {
  percent: number;
  where: string;
}

/** Self time by function, and by layer, of the profiles in one folder. */
export interface ProfileSummary {
  /** The `top` functions by self time, as shares of all samples. */
  functions: Hotspot[];
  /**
   * Shares of the busy (not idle) samples by layer: each native op, the
   * runtime's JavaScript (`ext:`), each file of the program, V8's garbage
   * collector and its unattributed native work ("(program)").
   */
  layers: Hotspot[];
  /**
   * Share of samples with V8 idle: the thread waits in the runtime's event
   * loop, or the runtime's Rust side works (polling, async reads) there.
   */
  idle: number;
}

function layerOf(frame: CallFrame): string | null {
  const name = frame.functionName;
  if (name === "(idle)") return null;
  if (name === "(garbage collector)") return "V8 garbage collector";
  if (name === "(program)") return "V8/runtime native (program)";
  if (name.startsWith("op_")) return `native ${name}`;
  if (frame.url.startsWith("ext:") || frame.url.startsWith("node:")) {
    return "Deno runtime JavaScript";
  }
  return frame.url.split("/").at(-1) || name;
}

function ranked(times: Map<string, number>, total: number): Hotspot[] {
  return [...times]
    .sort((a, b) => b[1] - a[1])
    .map(([where, time]) => ({ percent: (100 * time) / total, where }));
}

/** Ranks the `.cpuprofile` files of `dir` by function and by layer. */
export async function summarize(
  dir: string,
  top = 15,
): Promise<ProfileSummary> {
  const self = new Map<string, number>();
  const layers = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".cpuprofile")) continue;
    const profile: Profile = JSON.parse(
      await Deno.readTextFile(`${dir}/${entry.name}`),
    );
    const where = new Map<number, [string, string | null]>();
    for (const { id, callFrame } of profile.nodes) {
      const file = callFrame.url.split("/").at(-1) || "(native)";
      const name = callFrame.functionName || "(anonymous)";
      where.set(id, [
        `${name} ${file}:${callFrame.lineNumber + 1}`,
        layerOf(callFrame),
      ]);
    }
    // A sample's time is the delta recorded with the next sample.
    profile.samples.forEach((id, i) => {
      const dt = profile.timeDeltas[i + 1] ?? 0;
      const [key, layer] = where.get(id) ?? ["(unknown)", "(unknown)"];
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
      if (layer === null) idle += dt;
      else layers.set(layer, (layers.get(layer) ?? 0) + dt);
    });
  }
  if (total === 0) return { functions: [], layers: [], idle: 0 };
  return {
    functions: ranked(self, total).slice(0, top),
    layers: ranked(layers, total - idle),
    idle: (100 * idle) / total,
  };
}

/** The ranking as text, one function per line. */
export function formatHotspots(spots: readonly Hotspot[]): string {
  return spots.map((s) => `${s.percent.toFixed(1).padStart(5)}%  ${s.where}`)
    .join("\n");
}

/** The whole summary as text: functions, then layers of the busy time. */
export function formatSummary(summary: ProfileSummary): string {
  return [
    formatHotspots(summary.functions),
    `busy ${
      (100 - summary.idle).toFixed(1)
    }% of samples; by layer, share of the busy time:`,
    formatHotspots(summary.layers.filter((l) => l.percent >= 0.5)),
  ].join("\n");
}
