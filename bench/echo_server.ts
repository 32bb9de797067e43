/**
 * The benchmark's echo server: Python's asyncore documentation example on
 * `DispatcherWithSend` (`examples/echo_server.ts` is the plain port), with
 * what a server measured under load needs: a whole read per `recv_into()`,
 * backpressure, `--workers` and TLS.
 *
 *     deno run -A bench/echo_server.ts [--workers N]
 *                                      [--tls-cert PEM --tls-key PEM]
 *                                      [PORT] [HOST]
 *
 * PORT defaults to 8007 (0 picks a free port), HOST to 127.0.0.1. Prints
 * `listening on HOST:PORT` once bound; SIGINT or SIGTERM closes every channel
 * and exits. `--workers N` runs N processes (one per core) that share the
 * port, each with its own loop; it prints their ids on a second line.
 * The processes exit when the first process (the supervisor) exits, even
 * when it is killed with SIGKILL, so restarting a pool means restarting
 * that one process. With
 * a certificate and its key it serves TLS (`bind(address, { tls })`); talk
 * to it with `examples/echo_client.ts --ca`.
 *
 * Backpressure, the asyncore way: a handler stops reading (`readable()` is
 * false) while more than {@linkcode HIGH_WATER} bytes wait to be written to
 * its client, so a client that sends but never reads holds at most that much
 * server memory, and its bytes wait in the kernel instead.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  Dispatcher,
  DispatcherWithSend,
  type TlsServerOptions,
} from "@asyncore/asyncore";
import {
  poolArgs,
  runPool,
  sharedListener,
  sharedTlsListener,
  supervisorGone,
} from "../examples/_workers.ts";
import { serveUntilSignal } from "../examples/_serve.ts";

/** Pending output above which a handler stops reading from its client. */
export const HIGH_WATER = 1024 * 1024;

const scratch = new Uint8Array(65536);

/** Echoes what one client sends. */
export class EchoHandler extends DispatcherWithSend {
  // Read only while the client takes its echoes. Above the outbox's 256 KiB
  // mark, so the loop looks again whenever the outbox drains below it.
  override readable(): boolean {
    return this.bufferedAmount < HIGH_WATER;
  }

  // Python's example takes 8192 bytes. Each handle_read() is one loop pass,
  // and one read brings up to 64 KiB, so taking it all at once spares the
  // passes that would consume it in slices (bulk echo: ~2.4x the throughput).
  // recv_into() one scratch buffer, as a Python server would, because recv()
  // hands out bytes the caller keeps: a fresh 64 KiB buffer per bulk read.
  // send() copies what it takes, so one scratch serves every handler.
  override handle_read(): void {
    const n = this.recv_into(scratch);
    if (n > 0) this.send(scratch.subarray(0, n));
  }

  // A client that vanished is an ordinary event for a server: close quietly.
  override handle_close(): void {
    this.close();
  }
}

/** Options of {@linkcode EchoServer}. */
export interface EchoServerOptions {
  /** A listener bound already (a `--workers` process's shared port). */
  listener?: Deno.Listener;
  /** Serve TLS with this certificate and key. */
  tls?: TlsServerOptions;
}

/**
 * Listens (or takes a `listener` already bound) and starts an
 * {@linkcode EchoHandler} per client.
 */
export class EchoServer extends Dispatcher {
  constructor(host: string, port: number, options: EchoServerOptions = {}) {
    const { listener, tls } = options;
    super(listener ?? null);
    if (listener !== undefined) return;
    this.create_socket();
    this.set_reuse_addr();
    this.bind([host, port], tls ? { tls } : {});
    this.listen(1024);
  }

  override handle_accepted(sock: Deno.Conn): void {
    new EchoHandler(sock);
  }
}

if (import.meta.main) {
  let tls: TlsServerOptions | undefined;
  let pool;
  let positionals;
  try {
    pool = poolArgs(Deno.args);
    const parsed = parseArgs({
      args: pool.args,
      allowPositionals: true,
      options: {
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
      },
    });
    positionals = parsed.positionals;
    const { "tls-cert": cert, "tls-key": key } = parsed.values;
    if ((cert === undefined) !== (key === undefined)) {
      throw new TypeError("--tls-cert and --tls-key go together");
    }
    if (cert !== undefined && key !== undefined) {
      tls = {
        cert: Deno.readTextFileSync(cert),
        key: Deno.readTextFileSync(key),
      };
    }
  } catch (error) {
    console.error(`echo_server: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const { workers, workerPort, args } = pool;
  const port = Number(positionals[0] ?? 8007);
  const host = positionals[1] ?? "127.0.0.1";
  if (workers > 1) await runPool(import.meta.url, args, workers, port);
  const server = new EchoServer(
    host,
    port,
    workerPort === null ? (tls ? { tls } : {}) : {
      listener: tls
        ? sharedTlsListener(host, workerPort, tls)
        : sharedListener(host, workerPort),
    },
  );
  await serveUntilSignal(
    server.getsockname(),
    workerPort === null ? undefined : supervisorGone(),
  );
}
