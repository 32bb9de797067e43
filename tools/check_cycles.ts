// Fails when the library's own modules import each other in a cycle. The
// layers run one way (names → engine → loop → dispatcher → asynchat, UDP,
// timers → mod); a cycle, even through `import type`, means a layer reaches
// up. Run: deno run -A tools/check_cycles.ts

const root = new URL("../", import.meta.url).href;
const config = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", root)),
) as { exports: Record<string, string> };

interface Dependency {
  code?: { specifier?: string };
  type?: { specifier?: string };
}
interface Info {
  modules: { specifier: string; dependencies?: Dependency[] }[];
}

// Edges between the package's own files, from Deno's own module graph.
const graph = new Map<string, Set<string>>();
for (const entry of new Set(Object.values(config.exports))) {
  const { stdout, success } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL(entry, root).pathname],
    stderr: "inherit",
  }).output();
  if (!success) Deno.exit(2);
  const info = JSON.parse(new TextDecoder().decode(stdout)) as Info;
  for (const module of info.modules) {
    if (!module.specifier.startsWith(root)) continue;
    const from = module.specifier.slice(root.length);
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const dep of module.dependencies ?? []) {
      for (const to of [dep.code?.specifier, dep.type?.specifier]) {
        if (to?.startsWith(root)) edges.add(to.slice(root.length));
      }
    }
  }
}

// Tarjan's strongly connected components: each component of more than one
// file (or a file importing itself) is a cycle.
let next = 0;
const index = new Map<string, number>();
const low = new Map<string, number>();
const stack: string[] = [];
const onStack = new Set<string>();
const cycles: string[][] = [];

function visit(file: string): void {
  index.set(file, next);
  low.set(file, next++);
  stack.push(file);
  onStack.add(file);
  for (const to of graph.get(file) ?? []) {
    if (!index.has(to)) {
      visit(to);
      low.set(file, Math.min(low.get(file)!, low.get(to)!));
    } else if (onStack.has(to)) {
      low.set(file, Math.min(low.get(file)!, index.get(to)!));
    }
  }
  if (low.get(file) !== index.get(file)) return;
  const component: string[] = [];
  let member: string;
  do {
    member = stack.pop()!;
    onStack.delete(member);
    component.push(member);
  } while (member !== file);
  if (component.length > 1 || graph.get(file)?.has(file)) {
    cycles.push(component.sort());
  }
}

for (const file of [...graph.keys()].sort()) if (!index.has(file)) visit(file);

if (cycles.length > 0) {
  console.error(`import cycles among the library's files: ${cycles.length}`);
  for (const cycle of cycles) console.error(`  ${cycle.join(" ⇄ ")}`);
  Deno.exit(1);
}
console.log(`no import cycle among ${graph.size} files`);
