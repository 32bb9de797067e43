/**
 * A static file server on {@linkcode AsyncChat}: HTTP/1.1 with keep-alive
 * and pipelining, GET and HEAD, in the way Python's asynchat servers read a
 * protocol: terminator `"\n"` for each line of a request head (a line may
 * end in CRLF or, as Python's `http.server` allows, a bare LF; an empty line
 * ends the head), then a numeric terminator for a body announced by
 * `Content-Length`.
 *
 *     deno run -A examples/http_server.ts [--workers N] [PORT] [DIR] [HOST]
 *         [--request-timeout SECONDS] [--idle-timeout SECONDS]
 *
 * PORT defaults to 8000 (0 picks a free port), DIR to the current directory,
 * HOST to 127.0.0.1. Prints `listening on HOST:PORT` once bound; SIGINT or
 * SIGTERM closes every channel and exits 0. `--workers N` runs N processes
 * (one per core) that share the port, each with its own loop; it prints
 * their ids on a second line. The processes exit when the first process (the
 * supervisor) exits, even when it is killed with SIGKILL, so restarting a
 * pool means restarting that one process.
 *
 * Timeouts (0 turns one off): a request must arrive whole, head and body,
 * within {@linkcode REQUEST_TIMEOUT} seconds of its first byte, or it gets
 * 408 and the connection closes, so a client that sends its head a byte at a
 * time (slowloris) or never ends its request line cannot hold a connection;
 * a connection with no byte received or sent for
 * {@linkcode IDLE_TIMEOUT} seconds closes (an idle keep-alive connection,
 * or a client that stopped reading its response).
 *
 * What it serves: regular files inside DIR (a directory serves its
 * `index.html`), never anything outside it (`..`, `%2e%2e`, encoded slashes
 * and symlinks that lead out are refused). A file up to 64 KiB goes out
 * with its head in one write, read when its turn comes; a larger one is
 * streamed in 64 KiB chunks by an async-iterable producer, read only as fast
 * as the client takes them, never whole in memory. Errors: 400 malformed
 * request, 403 refused path, 404 missing, 405 other methods (with `Allow`),
 * 408 request not whole in time, 413 body over 1 MiB, 431 head over 16 KiB,
 * 501 `Transfer-Encoding`, 505 HTTP/2+.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  AF_INET,
  AF_INET6,
  AsyncChat,
  Dispatcher,
  type SocketMap,
  type TimerHandle,
} from "@asyncore/asyncore";
import {
  CHUNK_BYTES,
  fileChunks,
  fileHead,
  HttpError,
  MAX_BODY_BYTES,
  MAX_HEAD_BYTES,
  parseRequestHead,
  type RequestHead,
  resolveTarget,
  statusResponse,
  WholeFileProducer,
} from "./_http.ts";
import {
  type PoolArgs,
  poolArgs,
  runPool,
  sharedListener,
  supervisorGone,
} from "./_workers.ts";
import { serveUntilSignal } from "./_serve.ts";

// Head lines end in LF (a CR before it is stripped by the parser).
const LINE_END = "\n";
const LF = new Uint8Array([10]);
const CR = 13;
const LAST_EOL = /\r?\n$/;
// Queued responses above which a connection's further requests wait.
const MAX_QUEUED = 16;
const ALLOW = { Allow: "GET, HEAD" };
const CONTINUE = "100-continue";
const CONTINUE_RESPONSE = new TextEncoder().encode(
  "HTTP/1.1 100 Continue\r\n\r\n",
);
const latin1 = new TextDecoder("latin1");

/** Seconds a request may take to arrive whole, from its first byte. */
export const REQUEST_TIMEOUT = 20;
/** Seconds a connection may go without a byte received or sent. */
export const IDLE_TIMEOUT = 10;

/** Timeouts of {@linkcode HttpHandler} and {@linkcode HttpServer}. */
export interface HttpTimeouts {
  /**
   * Seconds from a request's first byte until it must be whole (else 408);
   * `null` for none.
   *
   * @default {REQUEST_TIMEOUT}
   */
  request?: number | null;
  /**
   * Seconds without a byte received or sent before the connection closes
   * (408 if a request was under way); `null` for none.
   *
   * @default {IDLE_TIMEOUT}
   */
  idle?: number | null;
}

/**
 * One HTTP connection. Requests are answered in the order they arrive, so
 * pipelining needs nothing more than asynchat's first-in, first-out
 * producer queue.
 */
export class HttpHandler extends AsyncChat {
  readonly #root: string;
  #head: Uint8Array[] = [];
  #headSize = 0;
  // The line being read: its size so far and its last byte.
  #lineSize = 0;
  #lineLast = 0;
  // The request whose body is being read (and dropped), if any.
  #request: RequestHead | null = null;
  // Set once a response closes the connection: later input is dropped.
  #done = false;
  readonly #requestTimeout: number | null;
  // Runs from a request's first byte until the request is whole.
  #requestTimer: TimerHandle | null = null;

  /**
   * Wraps an accepted connection.
   *
   * @param conn The accepted connection.
   * @param root The served directory's real path.
   * @param map The socket map to join.
   * @param timeouts Request and idle timeouts in seconds.
   *
   * @example Serve a file to one client
   * ```ts
   * import { close_all, loop } from "@asyncore/asyncore";
   * import { HttpHandler } from "./http_server.ts";
   * import assert from "node:assert/strict";
   *
   * const root = Deno.realPathSync(Deno.makeTempDirSync());
   * Deno.writeTextFileSync(`${root}/a.txt`, "hi");
   * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const client = await Deno.connect({ port: listener.addr.port });
   * new HttpHandler(await listener.accept(), root);
   * await client.write(new TextEncoder().encode("GET /a.txt HTTP/1.0\r\n\r\n"));
   * const done = new Response(client.readable).text();
   * await loop({ timeout: 0.05, count: 20 });
   * assert.match(await done, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nhi$/);
   * close_all();
   * Deno.removeSync(root, { recursive: true });
   * ```
   */
  constructor(
    conn: Deno.Conn,
    root: string,
    map: SocketMap | null = null,
    timeouts: HttpTimeouts = {},
  ) {
    super(conn, map);
    this.#root = root;
    this.set_terminator(LINE_END);
    const { request = REQUEST_TIMEOUT, idle = IDLE_TIMEOUT } = timeouts;
    this.#requestTimeout = request;
    this.timeout = idle;
  }

  /**
   * Keeps request-head bytes (up to the limit); drops body bytes.
   *
   * @param data Bytes before the terminator.
   */
  override collect_incoming_data(data: Uint8Array): void {
    if (this.#done || this.#request !== null) return;
    if (this.#headSize === 0) this.#startRequest();
    this.#headSize += data.length;
    if (this.#headSize > MAX_HEAD_BYTES) return this.#fail(431);
    this.#head.push(data);
    this.#lineSize += data.length;
    this.#lineLast = data[data.length - 1]!;
  }

  /**
   * Ends a head line (answering the request at the empty line that ends the
   * head), or answers a request whose body was read.
   */
  override found_terminator(): void {
    if (this.#done) return;
    const pending = this.#request;
    if (pending !== null) {
      this.#request = null;
      this.set_terminator(LINE_END);
      return this.#respond(pending);
    }
    const size = this.#lineSize;
    this.#lineSize = 0;
    if (size > 1 || (size === 1 && this.#lineLast !== CR)) {
      this.#headSize += 1;
      if (this.#headSize > MAX_HEAD_BYTES) return this.#fail(431);
      this.#head.push(LF);
      return;
    }
    // The empty line: drop its CR, and the last field's line ending.
    if (size === 1) this.#head.pop();
    const head = this.#takeHead().replace(LAST_EOL, "");
    let request: RequestHead | null;
    try {
      request = parseRequestHead(head);
    } catch (error) {
      if (error instanceof HttpError) return this.#fail(error.status);
      throw error;
    }
    if (request === null) { // empty lines between requests
      this.#endRequest();
      return;
    }
    if (request.contentLength > MAX_BODY_BYTES) return this.#fail(413);
    if (request.contentLength > 0) {
      // A client that waits for permission to send the body gets it.
      if (
        request.minor === 1 &&
        request.headers.get("expect")?.toLowerCase() === CONTINUE
      ) {
        this.push(CONTINUE_RESPONSE);
      }
      // asynchat counts the body down and calls found_terminator() again.
      this.#request = request;
      this.set_terminator(request.contentLength);
      return;
    }
    this.#respond(request);
  }

  #takeHead(): string {
    const parts = this.#head;
    this.#head = [];
    this.#headSize = 0;
    if (parts.length === 0) return "";
    let size = 0;
    for (const part of parts) size += part.length;
    const joined = new Uint8Array(size);
    let offset = 0;
    for (const part of parts) {
      joined.set(part, offset);
      offset += part.length;
    }
    return latin1.decode(joined);
  }

  #startRequest(): void {
    const seconds = this.#requestTimeout;
    if (seconds !== null && this.#requestTimer === null) {
      this.#requestTimer = this.call_later(seconds, () => this.#fail(408));
    }
  }

  #endRequest(): void {
    this.#requestTimer?.cancel();
    this.#requestTimer = null;
  }

  /**
   * Called after {@linkcode IDLE_TIMEOUT} seconds without a byte received
   * or sent: answers 408 if a request was under way, then closes.
   */
  override handle_timeout(): void {
    if (this.#done) return this.close();
    if (this.#headSize > 0 || this.#request !== null) return this.#fail(408);
    this.close();
  }

  #respond(request: RequestHead): void {
    this.#endRequest();
    const { method } = request;
    if (method !== "GET" && method !== "HEAD") {
      this.push(statusResponse(405, request, ALLOW));
    } else {
      const found = resolveTarget(this.#root, request.target);
      if (found.status === 200) {
        const { path, info } = found;
        const head = fileHead(path, info, request);
        const size = method === "HEAD" ? 0 : info.size;
        if (size <= CHUNK_BYTES) {
          this.push_with_producer(new WholeFileProducer(head, path, size));
        } else {
          this.push(head);
          this.push_with_producer(fileChunks(path, size));
        }
      } else if (found.status === 301) {
        this.push(statusResponse(301, request, { Location: found.location }));
      } else {
        this.push(statusResponse(found.status, request));
      }
    }
    if (!request.keepAlive) this.#finish();
  }

  // Answers a request that cannot be read further, then closes.
  #fail(status: number): void {
    this.push(statusResponse(status, null));
    this.#finish();
  }

  // Ends the conversation: later input is read and dropped rather than left
  // unread (unread input makes close() send a reset, which can destroy the
  // response before the client reads it), and the channel closes once the
  // queued responses are handed to the connection.
  #finish(): void {
    this.#endRequest();
    this.#done = true;
    this.#head = [];
    this.set_terminator(null);
    this.close_when_done();
  }

  /**
   * Reads further requests only while few responses wait to be sent: a
   * client that pipelines without reading cannot make the queue grow.
   *
   * @returns Whether to read.
   */
  override readable(): boolean {
    return super.readable() && this.producer_fifo.length < MAX_QUEUED;
  }
}

/** Listens on an address and serves `root` to every connection. */
export class HttpServer extends Dispatcher {
  /** The served directory's real path. */
  readonly root: string;
  /** The timeouts each connection gets. */
  readonly timeouts: HttpTimeouts;

  /**
   * Binds and listens at once (port 0 picks a free port).
   *
   * @param host The address to listen on, IPv4 or IPv6.
   * @param port The port; 0 for any free port.
   * @param root The served directory's real path.
   * @param timeouts Request and idle timeouts in seconds.
   * @param listener A listener bound already (a `--workers` process's shared
   * port); then `host` and `port` are not bound again.
   * @throws {Deno.errors.AddrInUse} If the address is taken.
   *
   * @example Serve a directory over fetch()
   * ```ts
   * import { close_all, loop } from "@asyncore/asyncore";
   * import { HttpServer } from "./http_server.ts";
   * import assert from "node:assert/strict";
   *
   * const root = Deno.realPathSync(Deno.makeTempDirSync());
   * Deno.writeTextFileSync(`${root}/index.html`, "<p>hi</p>");
   * const server = new HttpServer("127.0.0.1", 0, root);
   * const [, port] = server.getsockname() as [string, number];
   * const stop = new AbortController();
   * const running = loop({ timeout: 0.05, signal: stop.signal });
   * using client = Deno.createHttpClient({});
   * const response = await fetch(`http://127.0.0.1:${port}/`, { client });
   * assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
   * assert.equal(await response.text(), "<p>hi</p>");
   * stop.abort();
   * await running;
   * close_all();
   * Deno.removeSync(root, { recursive: true });
   * ```
   */
  constructor(
    host: string,
    port: number,
    root: string,
    timeouts: HttpTimeouts = {},
    listener: Deno.Listener | null = null,
  ) {
    super(listener);
    this.root = root;
    this.timeouts = timeouts;
    if (listener !== null) return;
    this.create_socket(host.includes(":") ? AF_INET6 : AF_INET);
    this.set_reuse_addr();
    this.bind([host, port]);
    this.listen(1024);
  }

  /**
   * Starts serving an accepted connection.
   *
   * @param sock The accepted connection.
   */
  override handle_accepted(sock: Deno.Conn): void {
    new HttpHandler(sock, this.root, null, this.timeouts);
  }
}

function usage(message: string): never {
  console.error(
    `${message}\nusage: http_server.ts [--workers N] [PORT] [DIR] [HOST] [--request-timeout SECONDS] [--idle-timeout SECONDS]`,
  );
  Deno.exit(2);
}

// A timeout flag: seconds, 0 for none, absent for the default.
function seconds(value: string | undefined, name: string): number | null {
  if (value === undefined) {
    return name === "idle" ? IDLE_TIMEOUT : REQUEST_TIMEOUT;
  }
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    usage(`bad --${name}-timeout "${value}"`);
  }
  return n === 0 ? null : n;
}

if (import.meta.main) {
  let pool: PoolArgs;
  let args;
  try {
    pool = poolArgs(Deno.args);
    args = parseArgs({
      args: pool.args,
      allowPositionals: true,
      options: {
        "request-timeout": { type: "string" },
        "idle-timeout": { type: "string" },
      },
    });
  } catch (error) {
    usage((error as Error).message);
  }
  const { values, positionals } = args;
  const { workers, workerPort } = pool;
  const timeouts = {
    request: seconds(values["request-timeout"], "request"),
    idle: seconds(values["idle-timeout"], "idle"),
  };
  const port = Number(positionals[0] ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    usage(`bad port "${positionals[0]}"`);
  }
  const dir = positionals[1] ?? ".";
  let root: string;
  try {
    root = Deno.realPathSync(dir);
    if (!Deno.statSync(root).isDirectory) usage(`"${dir}" is not a directory`);
  } catch (error) {
    usage(`cannot serve "${dir}": ${(error as Error).message}`);
  }
  const host = positionals[2] ?? "127.0.0.1";
  if (workers > 1) await runPool(import.meta.url, pool.args, workers, port);
  const server = new HttpServer(
    host,
    port,
    root,
    timeouts,
    workerPort === null ? null : sharedListener(host, workerPort),
  );
  await serveUntilSignal(
    server.getsockname(),
    workerPort === null ? undefined : supervisorGone(),
  );
}
