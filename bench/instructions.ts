/**
 * Instructions per message, a cost that this machine's noise cannot move:
 * each echo server runs under valgrind's callgrind, which counts the
 * instructions its process executes in user space (the kernel's work is not
 * counted). A ping-pong client in this process warms the server up with
 * `--warm` messages, the counters are zeroed, and the count is divided by the
 * next `--count` messages. Runs of one server agree within ~3 %, where rates
 * on this VM swing by 10–20 % from minute to minute. The headline is the main
 * thread's count (the JavaScript, the ops, the event loop); all threads' is
 * printed beside it: under valgrind V8's compiler threads can still be at
 * work in the counted window, where natively they take no measurable CPU.
 *
 *     deno run -A bench/instructions.ts [--conns N] [--warm N] [--count N]
 *                                       [--runs N] [--servers a,b]
 *                                       [--add NAME=FILE]
 *
 * Needs `valgrind` (with its `callgrind_control`). Under valgrind V8's
 * optimising compiler (TurboFan) rarely gets its turn, so the JavaScript runs
 * one tier lower (Maglev) than it does natively, where it is cheaper: compare
 * servers measured here with each other, not with the native suite.
 * `--add before=../old/bench/echo_server.ts` measures another copy of the
 * code beside them (an A/B).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { median } from "./_median.ts";
import { startServer, stopServer } from "./_server.ts";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);
const SERVERS: Record<string, string> = {
  asyncore: `${ROOT}bench/echo_server.ts`,
  raw_deno: `${ROOT}bench/raw_deno_echo.ts`,
};
const BASE = "raw_deno";
const SIZE = 64;

interface Options {
  conns: number;
  warm: number;
  count: number;
  runs: number;
  servers: [name: string, file: string][];
}

function options(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      conns: { type: "string", default: "1" },
      warm: { type: "string", default: "3000" },
      count: { type: "string", default: "3000" },
      runs: { type: "string", default: "2" },
      servers: { type: "string", default: "asyncore,raw_deno" },
      add: { type: "string", multiple: true, default: [] },
    },
  });
  const number = (name: "conns" | "warm" | "count" | "runs"): number => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(
        `--${name} "${values[name]}" is not a positive integer`,
      );
    }
    return value;
  };
  const servers: [string, string][] = values.servers.split(",").map((name) => {
    const file = SERVERS[name];
    if (file === undefined) {
      throw new RangeError(
        `--servers: unknown server "${name}" (known: ${
          Object.keys(SERVERS).join(", ")
        })`,
      );
    }
    return [name, file];
  });
  for (const spec of values.add) {
    const at = spec.indexOf("=");
    if (at < 1) throw new TypeError(`--add "${spec}" is not NAME=FILE`);
    servers.push([spec.slice(0, at), spec.slice(at + 1)]);
  }
  return {
    conns: number("conns"),
    warm: number("warm"),
    count: number("count"),
    runs: number("runs"),
    servers,
  };
}

/** Sends `total` messages over `conns`, each waiting for its echo. */
async function pingPong(
  port: number,
  conns: number,
  total: number,
): Promise<void> {
  const message = new Uint8Array(SIZE).fill(0x61);
  let left = total;
  const one = async (): Promise<void> => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    const echo = new Uint8Array(SIZE);
    try {
      while (left > 0) {
        left--;
        await conn.write(message);
        for (let got = 0; got < SIZE;) {
          const n = await conn.read(echo.subarray(got));
          if (n === null) throw new Error("the server closed the connection");
          got += n;
        }
      }
    } finally {
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: conns }, one));
}

async function control(args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command("callgrind_control", {
    args,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(
      `callgrind_control ${args.join(" ")} failed: ${
        new TextDecoder().decode(stderr)
      }`,
    );
  }
}

/** Instructions per message: on the main thread, and on all threads. */
interface Count {
  main: number;
  all: number;
}

async function measure(file: string, o: Options, dir: string): Promise<Count> {
  const server = await startServer(
    [
      "valgrind",
      "--tool=callgrind",
      "--smc-check=all-non-file",
      // A dump per thread: V8's compiler threads, which valgrind slows so much
      // that they can still be at work in the counted window, apart from the
      // main thread's JavaScript, ops and event loop.
      "--separate-threads=yes",
      `--callgrind-out-file=${dir}/cg.%p`,
      Deno.execPath(),
      "run",
      "-A",
      file,
      "0",
    ],
    `${dir}/server.log`,
    {},
    // valgrind starts Deno ~50 times slower than it runs natively.
    300_000,
  );
  try {
    const pid = `${server.child.pid}`;
    await pingPong(server.port, o.conns, o.warm);
    await control(["-z", pid]);
    await pingPong(server.port, o.conns, o.count);
    await control(["-d", pid]);
    // cg.PID.1-TT: the first dump, of thread TT (01 is the main thread).
    const name = new RegExp(`^cg\\.${pid}\\.1-(\\d+)$`);
    let main: number | null = null;
    let all = 0;
    for await (const entry of Deno.readDir(dir)) {
      const thread = name.exec(entry.name)?.[1];
      if (thread === undefined) continue;
      const dump = await Deno.readTextFile(`${dir}/${entry.name}`);
      const total = /^(?:summary|totals): (\d+)/m.exec(dump);
      if (total === null) throw new Error("a callgrind dump has no total");
      all += Number(total[1]);
      if (Number(thread) === 1) main = Number(total[1]);
    }
    if (main === null) throw new Error("no callgrind dump of the main thread");
    return { main: main / o.count, all: all / o.count };
  } finally {
    await stopServer(server);
  }
}

if (import.meta.main) {
  let o: Options;
  try {
    o = options(Deno.args);
  } catch (error) {
    console.error(`instructions: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const dir = await Deno.makeTempDir({ prefix: "asyncore-instructions-" });
  const counts = new Map<string, Count[]>(
    o.servers.map(([name]) => [name, []]),
  );
  for (let run = 1; run <= o.runs; run++) {
    // Alternate the order, as the suite does (the count hardly drifts, but
    // the cost of a run is the same either way).
    const order = run % 2 ? o.servers : [...o.servers].reverse();
    for (const [name, file] of order) {
      const count = await measure(file, o, dir);
      counts.get(name)!.push(count);
      console.log(
        `run ${run}/${o.runs} ${name}: ${
          Math.round(count.main)
        } instructions per message on the main thread, ${
          Math.round(count.all)
        } on all threads`,
      );
    }
  }
  const main = (values: Count[]): number => median(values.map((c) => c.main))!;
  const base = counts.get(BASE);
  console.log(
    `\n${o.conns} connection(s), ${SIZE} B messages, ${o.count} counted after ${o.warm}; main thread [each run], all threads:`,
  );
  for (const [name, values] of counts) {
    const mid = main(values);
    const ratio = base !== undefined && name !== BASE
      ? ` (${(mid / main(base)).toFixed(2)}× raw Deno)`
      : "";
    const all = median(values.map((c) => c.all))!;
    console.log(
      `${name.padEnd(10)} ${Math.round(mid)} per message${ratio} [${
        values.map((c) => Math.round(c.main)).join(", ")
      }], ${Math.round(all)} on all threads`,
    );
  }
  await Deno.remove(dir, { recursive: true });
}
