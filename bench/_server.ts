// Benchmark servers as child processes: started from the repository's root,
// ready once they print "listening on HOST:PORT", their output kept in a
// log, and stopped without leaving a process behind.

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);

/** A server process started by {@linkcode startServer}. */
export interface Server {
  child: Deno.ChildProcess;
  port: number;
  pumps: Promise<void>[];
  log: Deno.FsFile;
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await file.write(data.subarray(offset));
  }
}

async function pump(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  log: Deno.FsFile,
): Promise<void> {
  while (true) {
    const { value, done } = await reader.read();
    if (done) return;
    await writeAll(log, value);
  }
}

const LISTENING = /listening on (\S+):(\d+)/;

/**
 * Starts `argv` (from the repository's root) and waits for its
 * `listening on HOST:PORT` line; its output goes to `logPath`. Throws when
 * the line does not come within `timeoutMs` or the process exits first.
 */
export async function startServer(
  argv: string[],
  logPath: string,
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<Server> {
  const log = await Deno.open(logPath, {
    write: true,
    create: true,
    truncate: true,
  });
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    cwd: ROOT,
    // No background update check (a DNS lookup and a download attempt)
    // inside the measurement.
    env: { DENO_NO_UPDATE_CHECK: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pumps = [pump(child.stderr.getReader(), log)];
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const exited = child.status.then(() => "exited" as const);
  try {
    while (true) {
      const next = await Promise.race([reader.read(), expired, exited]);
      if (next === "timeout" || next === "exited" || next.done) {
        throw new Error(
          `Cannot start ${argv.join(" ")}: ${
            next === "timeout" ? 'no "listening on" line' : "it exited"
          } (log: ${logPath})`,
        );
      }
      await writeAll(log, next.value);
      text += decoder.decode(next.value, { stream: true });
      const match = LISTENING.exec(text);
      if (match) {
        pumps.push(pump(reader, log));
        return { child, port: Number(match[2]), pumps, log };
      }
    }
  } catch (error) {
    await stopServer({ child, port: 0, pumps, log }, reader);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Stops a server (SIGTERM, then SIGKILL after 5 s) and closes its log. */
export async function stopServer(
  server: Server,
  reader?: ReadableStreamDefaultReader<Uint8Array>,
): Promise<void> {
  const { child } = server;
  const kill = (signal: Deno.Signal): void => {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  };
  kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), 5_000);
  });
  if (await Promise.race([child.status, late]) === "late") kill("SIGKILL");
  clearTimeout(timer);
  await child.status;
  if (reader) await reader.cancel().catch(() => {});
  await Promise.allSettled(server.pumps);
  server.log.close();
}
