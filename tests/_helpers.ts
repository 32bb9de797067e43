// Shared test helpers: bounded loop-until-flag (CPython's
// loop_waiting_for_flag), the address families the API tests run over, and
// small utilities for raw peers.

import assert from "node:assert/strict";
import {
  type Address,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  close_all,
  type Dispatcher,
  DispatcherWithSend,
  type Family,
  loop,
  socket_map,
  type SocketMap,
} from "../mod.ts";

/** Options of {@linkcode loopUntil}. */
export interface LoopUntilOptions {
  /** The map to serve; default `socket_map`. */
  map?: SocketMap;
  /** Passed on to `loop()`. */
  use_poll?: boolean;
  /** Seconds each pass may wait. */
  timeout?: number;
  /**
   * Seconds after which to give up. A bound, not a timing assertion: passes
   * with ready channels take microseconds, so a pass count cannot bound a
   * wait for another process.
   */
  limit?: number;
  /** What was awaited, for the failure message. */
  what?: string;
}

/**
 * Runs one loop pass at a time until `done()` is true, like CPython's
 * `loop_waiting_for_flag`; fails after `limit` seconds or when the map
 * empties first. Never sleeps: each pass waits for I/O, bounded by `timeout`.
 */
export async function loopUntil(
  done: () => boolean,
  options: LoopUntilOptions = {},
): Promise<void> {
  const {
    map = socket_map,
    use_poll = false,
    timeout = 0.05,
    limit = 10,
    what = "the flag is set",
  } = options;
  const deadline = performance.now() + limit * 1000;
  while (!done() && map.size > 0 && performance.now() < deadline) {
    await loop({ timeout, count: 1, use_poll, map });
  }
  assert.ok(done(), `gave up waiting until ${what}`);
}

/**
 * Closes every channel of `map` at the end of a `using` block, so a failing
 * assertion cannot leave channels behind for the next test.
 */
export function closing(map: SocketMap = socket_map): Disposable {
  return { [Symbol.dispose]: () => close_all(map, true) };
}

/** Counts unhandled promise rejections until disposed. */
export interface RejectionWatch extends Disposable {
  /** The rejections seen so far. */
  readonly reasons: unknown[];
}

/**
 * Watches for unhandled rejections (and keeps them from failing the run, so
 * the test can assert on them by name).
 */
export function watchRejections(): RejectionWatch {
  const reasons: unknown[] = [];
  const onUnhandled = (event: PromiseRejectionEvent): void => {
    reasons.push(event.reason);
    event.preventDefault();
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  return {
    reasons,
    [Symbol.dispose]() {
      globalThis.removeEventListener("unhandledrejection", onUnhandled);
    },
  };
}

/** Whether this host can bind `::1`. */
export const HAS_IPV6: boolean = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

/** Whether `python3` can be run (used to make a peer send an RST). */
export const HAS_PYTHON: boolean = (() => {
  try {
    return new Deno.Command("python3", {
      args: ["-c", "import socket, struct"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();

/** One address family the API tests run over. */
export interface FamilyCase {
  name: string;
  family: Family;
  /** Skip the family when the host cannot serve it. */
  ignore: boolean;
  /** A fresh address to bind in `dir` (port 0 for TCP). */
  address(dir: string): Address;
}

let lastPath = 0;

/** IPv4, IPv6 (skipped when `::1` cannot be bound) and Unix sockets. */
export const FAMILIES: readonly FamilyCase[] = [
  {
    name: "IPv4",
    family: AF_INET,
    ignore: false,
    address: () => ["127.0.0.1", 0],
  },
  {
    name: "IPv6",
    family: AF_INET6,
    ignore: !HAS_IPV6,
    address: () => ["::1", 0],
  },
  {
    name: "Unix",
    family: AF_UNIX,
    ignore: Deno.build.os === "windows",
    address: (dir) => `${dir}/${++lastPath}.sock`,
  },
];

/** A temporary directory removed at the end of an `await using` block. */
export interface TempDir extends AsyncDisposable {
  path: string;
}

/** Makes a temporary directory for Unix socket paths. */
export async function tempDir(): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix: "asyncore_test_" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** The port of a TCP address (fails on a Unix path). */
export function portOf(address: Address): number {
  assert.ok(Array.isArray(address), "expected a [host, port] address");
  return address[1];
}

/** A raw Deno connection to an address in Python's form. */
export function connectTo(address: Address): Promise<Deno.Conn> {
  return typeof address === "string"
    ? Deno.connect({ transport: "unix", path: address })
    : Deno.connect({ hostname: address[0], port: address[1] });
}

/** Reads from `conn` until EOF (or a reset), closes it, returns the bytes. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  using _conn = conn;
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  }
  return concat(chunks);
}

/**
 * Connects `client` (its socket created) to `listener` through the loop;
 * returns the accepted end once `client` is connected.
 */
export async function connectDispatcher(
  client: Dispatcher,
  listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
): Promise<Deno.Conn> {
  client.connect(["127.0.0.1", listener.addr.port]);
  const accepted = listener.accept();
  await loopUntil(() => client.connected);
  return await accepted;
}

/** Both ends of a fresh loopback TCP connection: `[accepted, client]`. */
export async function loopbackPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return await Promise.all([
    listener.accept(),
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  ]);
}

/** Writes all of `data` to `conn`. */
export async function writeAll(
  conn: Deno.Conn,
  data: Uint8Array,
): Promise<void> {
  for (let offset = 0; offset < data.length;) {
    offset += await conn.write(data.subarray(offset));
  }
}

/** Joins byte arrays. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of `text`. */
export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** `data` decoded as UTF-8. */
export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/** Echoes what it reads; closes when the peer does. */
export class EchoHandler extends DispatcherWithSend {
  override handle_read(): void {
    const data = this.recv(8192);
    if (data.length > 0) this.send(data);
  }
  override handle_close(): void {
    this.close();
  }
}

const FIXTURES = new URL("./fixtures/", import.meta.url);
/** The test CA's certificate (PEM), which signed the server's. */
export const CA: string = Deno.readTextFileSync(
  new URL("tls_ca.pem", FIXTURES),
);
/** The test server's certificate (PEM: localhost, 127.0.0.1, ::1). */
export const CERT: string = Deno.readTextFileSync(
  new URL("tls_server.pem", FIXTURES),
);
/** The test server's private key (PEM). */
export const KEY: string = Deno.readTextFileSync(
  new URL("tls_server.key", FIXTURES),
);
/** The path of the test CA's certificate, for Python peers. */
export const CA_PATH: string = new URL("tls_ca.pem", FIXTURES).pathname;
/** The path of the test server's certificate, for Python peers. */
export const CERT_PATH: string = new URL("tls_server.pem", FIXTURES).pathname;
/** The path of the test server's key, for Python peers. */
export const KEY_PATH: string = new URL("tls_server.key", FIXTURES).pathname;

/** Runs `script` with `python3 -c`, its output piped. */
export function python(script: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command("python3", {
    args: ["-c", script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
