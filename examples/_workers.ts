// `--workers N` for the example servers: one process per core, all accepting
// on the same port (SO_REUSEPORT: the kernel spreads new connections over
// the processes), each with its own loop and socket map, as a pre-forked
// Python asyncore server would run. Processes rather than Deno workers: both
// need `Deno.listen({ reusePort: true })`, which needs `--unstable-net`, and
// the supervisor passes that flag to its children, where workers would need
// the user to pass it; they measured alike.

/** What the example's command line asks of the pool. */
export interface PoolArgs {
  /** `--workers N`: how many processes; 1 without the option. */
  workers: number;
  /** Set in a pool's process: the port to share (`--worker-port P`). */
  workerPort: number | null;
  /** The other arguments, in order. */
  args: string[];
}

const WORKERS = "--workers";
const WORKER_PORT = "--worker-port";

function count(value: string | undefined, name: string, min: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < min || n > 65535) {
    throw new RangeError(
      `Cannot start: ${name} "${value}" is not an integer from ${min}`,
    );
  }
  return n;
}

/**
 * Takes `--workers N` (or `--workers=N`) and the pool's own `--worker-port P`
 * out of `args`.
 */
export function poolArgs(args: string[]): PoolArgs {
  let workers = 1;
  let workerPort: number | null = null;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.startsWith("--") && arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    if (name === WORKERS) {
      workers = count(inline ?? args[++i], WORKERS, 1);
    } else if (name === WORKER_PORT) {
      workerPort = count(inline ?? args[++i], WORKER_PORT, 0);
    } else {
      rest.push(arg);
    }
  }
  return { workers, workerPort, args: rest };
}

/**
 * A listener on `host:port` that shares the port with the other processes
 * of the pool. Runs in a pool's process, which has `--unstable-net`.
 */
export function sharedListener(host: string, port: number): Deno.TcpListener {
  const options = { hostname: host, port, reusePort: true };
  return Deno.listen(options as Deno.TcpListenOptions);
}

/** {@linkcode sharedListener} for TLS: `Deno.listenTls` on a shared port. */
export function sharedTlsListener(
  host: string,
  port: number,
  tls: { cert: string; key: string },
): Deno.TlsListener {
  const options = { hostname: host, port, reusePort: true, ...tls };
  return Deno.listenTls(
    options as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem,
  );
}

const decoder = new TextDecoder();
const LISTENING = /^listening on (.+):(\d+)$/;

// The child's first line, `listening on HOST:PORT`; the rest of its output
// is copied to ours.
async function listening(child: Deno.ChildProcess): Promise<[string, number]> {
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  const newline = text.indexOf("\n");
  const match = LISTENING.exec(text.slice(0, newline));
  if (match === null) {
    throw new Error(`Cannot start the pool: a process printed "${text}"`);
  }
  (async () => {
    const rest = new TextEncoder().encode(text.slice(newline + 1));
    if (rest.length > 0) await Deno.stdout.write(rest);
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      for (let at = 0; at < r.value.length;) {
        at += await Deno.stdout.write(r.value.subarray(at));
      }
    }
  })().catch(() => {});
  return [match[1]!, Number(match[2])];
}

/**
 * Resolves once a pool's process has lost its supervisor: its stdin is a
 * pipe from the supervisor that nothing is written to, so it reads EOF when
 * the supervisor exits, even by SIGKILL, which no signal handler sees.
 */
export async function supervisorGone(): Promise<void> {
  const buf = new Uint8Array(1);
  try {
    while (await Deno.stdin.read(buf) !== null) {
      // nothing is sent: wait for EOF
    }
  } catch {
    // a broken pipe is the supervisor gone too
  }
}

/**
 * Runs `workers` copies of `script` (a module URL) with `args`, all sharing
 * `port` (0: the first picks one), prints `listening on HOST:PORT` and the
 * processes' ids, and exits with them: SIGINT or SIGTERM stops every process
 * and exits 0; a process that exits on its own stops the others, exit 1.
 * If the supervisor itself dies (even by SIGKILL), its processes see their
 * stdin close and exit as on SIGTERM, so the port is free for a new pool:
 * a deployment restarts a pool by restarting the supervisor alone.
 */
export async function runPool(
  script: string,
  args: string[],
  workers: number,
  port: number,
): Promise<never> {
  const children: Deno.ChildProcess[] = [];
  const spawn = (workerPort: number): Deno.ChildProcess => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-net",
        script,
        WORKER_PORT,
        String(workerPort),
        ...args,
      ],
      // A pipe nothing is written to: the process sees its EOF once this
      // one is gone, however it ended (see supervisorGone()).
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    children.push(child);
    return child;
  };
  let stopping = false;
  const stop = async (code: number): Promise<never> => {
    stopping = true;
    for (const child of children) {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    await Promise.all(children.map((child) => child.status));
    Deno.exit(code);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stop(0));
  }
  let where: [string, number];
  try {
    where = await listening(spawn(port));
    for (let i = 1; i < workers; i++) {
      const [, shared] = await listening(spawn(where[1]));
      if (shared !== where[1]) throw new Error("Cannot share the port");
    }
  } catch (error) {
    console.error((error as Error).message);
    return await stop(1);
  }
  for (const child of children) {
    child.status.then(() => stopping || stop(1));
  }
  console.log(`listening on ${where[0]}:${where[1]}`);
  console.log(`workers: ${children.map((child) => child.pid).join(" ")}`);
  return await new Promise<never>(() => {});
}
