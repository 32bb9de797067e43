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

/** The `top` functions by self time in the `.cpuprofile` files of `dir`. */
export async function hotspots(dir: string, top = 15): Promise<Hotspot[]> {
  const self = new Map<string, number>();
  let total = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".cpuprofile")) continue;
    const profile: Profile = JSON.parse(
      await Deno.readTextFile(`${dir}/${entry.name}`),
    );
    const where = new Map<number, string>();
    for (const { id, callFrame } of profile.nodes) {
      const file = callFrame.url.split("/").at(-1) || "(native)";
      const name = callFrame.functionName || "(anonymous)";
      where.set(id, `${name} ${file}:${callFrame.lineNumber + 1}`);
    }
    // A sample's time is the delta recorded with the next sample.
    profile.samples.forEach((id, i) => {
      const dt = profile.timeDeltas[i + 1] ?? 0;
      const key = where.get(id) ?? "(unknown)";
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    });
  }
  if (total === 0) return [];
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, time]) => ({ percent: (100 * time) / total, where }));
}

/** The ranking as text, one function per line. */
export function formatHotspots(spots: readonly Hotspot[]): string {
  return spots.map((s) => `${s.percent.toFixed(1).padStart(5)}%  ${s.where}`)
    .join("\n");
}
