// SocketObject: the Python socket object a port expects behind
// `self.socket` and in what `accept()` returns, backed by a Deno resource.
// It is also a `Deno.Conn`, so code written for the raw connection (and
// `handle_accepted(sock: Deno.Conn)` overrides) keeps working.

import { nextFileno } from "./_fileno.ts";
import { closeQuietly, ignore } from "./_quiet.ts";
import type { FileWrapper } from "./_file_wrapper.ts";
import {
  type Address,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  type Family,
  familyOf,
  fromDenoAddr,
  type InetAddress,
  IPPROTO_TCP,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SO_KEEPALIVE,
  SO_REUSEADDR,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
} from "./socket.ts";

/**
 * A UDP endpoint: the part of `Deno.DatagramConn` (an unstable API) that a
 * datagram socket uses.
 */
export interface DatagramEndpoint {
  /** Resolves to the next datagram and its sender. */
  receive(p?: Uint8Array): Promise<[Uint8Array, Deno.Addr]>;
  /** Sends one datagram to `addr`. */
  send(p: Uint8Array, addr: Deno.Addr): Promise<number>;
  /** Closes the endpoint. */
  close(): void;
  /** The local address. */
  readonly addr: Deno.Addr;
}

/**
 * The Deno resource behind a {@linkcode SocketObject}: a connection, a
 * listener, a UDP endpoint, or a file.
 */
export type RawSocket =
  | Deno.Conn
  | Deno.Listener
  | DatagramEndpoint
  | FileWrapper;

/** What the owning dispatcher's channel does for some socket methods. */
export interface SocketOps {
  shutdown(read: boolean, write: boolean): void;
  sendto?(data: Uint8Array, address: Address): number;
  recvfrom?(size: number): [data: Uint8Array, address: Address];
  peer?(): Address | null;
  /** The UDP endpoint, once bind, connect or a first `sendto()` opened it. */
  endpoint?(): DatagramEndpoint | null;
}

/** The key under which a SocketObject keeps its owner's operations. */
export const kOps: unique symbol = Symbol("asyncore.socketOps");

// Names for the error message of an option Deno cannot set.
const OPTION_NAMES: Record<string, string> = {
  "1:2": "SO_REUSEADDR",
  "1:6": "SO_BROADCAST",
  "1:7": "SO_SNDBUF",
  "1:8": "SO_RCVBUF",
  "1:9": "SO_KEEPALIVE",
  "1:10": "SO_OOBINLINE",
  "1:13": "SO_LINGER",
  "1:15": "SO_REUSEPORT",
  "6:1": "TCP_NODELAY",
  "0:2": "IP_TTL",
  "41:26": "IPV6_V6ONLY",
};

let setRawOf: (sock: SocketObject, raw: RawSocket | null) => void;
let inheritOf: (sock: SocketObject, listener: SocketObject) => void;

/** Sets the resource behind `sock` (a connect or bind made it). */
export function setRaw(sock: SocketObject, raw: RawSocket | null): void {
  setRawOf(sock, raw);
}

/**
 * Gives an accepted socket the options set on its listening socket, as the
 * kernel does for `TCP_NODELAY` and `SO_KEEPALIVE`.
 */
export function inheritOptions(
  sock: SocketObject,
  listener: SocketObject,
): void {
  inheritOf(sock, listener);
}

function familyName(family: Family): string {
  return family === AF_INET6
    ? "AF_INET6"
    : family === AF_UNIX
    ? "AF_UNIX"
    : "AF_INET";
}

function showAddress(address: Address): string {
  return typeof address === "string"
    ? JSON.stringify(address)
    : `[${JSON.stringify(address[0])}, ${address[1]}]`;
}

/** True for a listener (what `bind()` opens). */
export function isListener(raw: RawSocket | null): raw is Deno.Listener {
  return typeof (raw as Deno.Listener | null)?.accept === "function";
}

function isDatagram(raw: RawSocket): raw is DatagramEndpoint {
  return typeof (raw as DatagramEndpoint).receive === "function";
}

/** True for a connection (what `connect()` or `accept()` makes). */
export function isConn(raw: RawSocket | null): raw is Deno.Conn {
  return raw !== null && "remoteAddr" in raw;
}

function familyOfAddr(addr: Deno.Addr): Family {
  if (addr.transport === "unix" || addr.transport === "unixpacket") {
    return AF_UNIX;
  }
  return "hostname" in addr && addr.hostname.includes(":") ? AF_INET6 : AF_INET;
}

function checkFamily(family: unknown): Family | undefined {
  if (family === undefined) return undefined;
  if (family !== AF_INET && family !== AF_INET6 && family !== AF_UNIX) {
    throw new RangeError(`Cannot get address: unknown family "${family}"`);
  }
  return family;
}

function typed(address: Address, family: Family | undefined): Address {
  if (family !== undefined && familyOf(address) !== family) {
    throw new TypeError(
      `Cannot get address: ${
        JSON.stringify(address)
      } does not belong to family ${family}`,
    );
  }
  return address;
}

/**
 * Python's socket object, as `Dispatcher.socket` and `Dispatcher.accept()`
 * give it: `getsockname()`, `getpeername()`, `setsockopt()`, `shutdown()`,
 * `sendto()`, `recvfrom()`, `fileno()`, `setblocking()`, over the Deno
 * resource in {@linkcode SocketObject.raw}. It is a `Deno.Conn` too (its
 * `read`, `write`, `closeWrite`, … go to the connection), so code written
 * for the raw connection keeps working.
 *
 * @example The address of an accepted connection, typed for TCP
 * ```ts
 * import { AF_INET, SocketObject } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * using client = await Deno.connect({
 *   hostname: "127.0.0.1",
 *   port: listener.addr.port,
 * });
 * using sock = new SocketObject(await listener.accept());
 * const [host, port] = sock.getsockname(AF_INET);
 * assert.equal(host, "127.0.0.1");
 * assert.equal(port, listener.addr.port);
 * assert.equal(sock.getpeername(AF_INET)[1], client.localAddr.port);
 * ```
 */
export class SocketObject implements Deno.Conn {
  /** The address family: Python's `sock.family`. */
  readonly family: Family;
  /** {@linkcode SOCK_STREAM} or {@linkcode SOCK_DGRAM}: Python's `sock.type`. */
  readonly type: number;
  /** @ignore What the owning dispatcher's channel does; internal. */
  [kOps]: SocketOps | null = null;
  #raw: RawSocket | null;
  #fd: number = nextFileno();
  #noDelay = true;
  #keepAlive: boolean | null = null;
  #closed = false;

  static {
    setRawOf = (sock, raw) => {
      sock.#raw = raw;
      if (raw !== null) sock.#apply(raw);
    };
    inheritOf = (sock, listener) => {
      sock.#noDelay = listener.#noDelay;
      sock.#keepAlive = listener.#keepAlive;
      if (sock.#raw !== null) sock.#apply(sock.#raw);
    };
  }

  /**
   * Wraps `raw` (a connection, listener, UDP endpoint or file), or makes a
   * socket of `family` and `type` whose resource a later bind or connect
   * opens.
   *
   * @param raw The Deno resource, or `null`.
   * @param family The address family; default from `raw`, else
   * {@linkcode AF_INET}.
   * @param type The socket type; default from `raw`, else
   * {@linkcode SOCK_STREAM}.
   */
  constructor(raw: RawSocket | null, family?: Family, type?: number) {
    this.#raw = raw;
    let addr: Deno.Addr | null = null;
    if (raw !== null) {
      if (isListener(raw) || isDatagram(raw)) addr = raw.addr;
      else if (isConn(raw)) addr = raw.localAddr;
    }
    this.family = family ?? (addr === null ? AF_INET : familyOfAddr(addr));
    this.type = type ??
      (raw !== null && isDatagram(raw) ? SOCK_DGRAM : SOCK_STREAM);
  }

  /**
   * The Deno resource: a `Deno.Conn`, a `Deno.Listener`, a UDP endpoint or
   * a `FileWrapper`, or `null` before bind or connect opened it.
   */
  get raw(): RawSocket | null {
    return this.#raw;
  }

  /**
   * The connection, for Deno APIs that need a `Deno.Conn`.
   *
   * @throws {Deno.errors.NotConnected} If the socket is not a connection.
   */
  get conn(): Deno.Conn {
    const raw = this.#raw;
    if (!isConn(raw)) {
      throw new Deno.errors.NotConnected(
        "Cannot get connection: the socket is not connected",
      );
    }
    return raw;
  }

  /**
   * The local address, as Python's `getsockname()`. Pass the family to get
   * the `[host, port]` type without a cast.
   *
   * @param family Expect this family; throws if the address is of another.
   * @returns `[host, port]` or a Unix socket path.
   * @throws {Deno.errors.NotConnected} If not bound or connected.
   * @throws {TypeError} If the address is not of `family`.
   */
  getsockname(family: typeof AF_INET | typeof AF_INET6): InetAddress;
  /**
   * The local address, as Python's `getsockname()`.
   *
   * @param family Expect this family; throws if the address is of another.
   * @returns `[host, port]` or a Unix socket path.
   * @throws {Deno.errors.NotConnected} If not bound or connected.
   */
  getsockname(family?: Family): Address;
  getsockname(family?: Family): Address {
    const expected = checkFamily(family);
    const raw = this.#raw;
    if (raw !== null) {
      if (isConn(raw)) return typed(fromDenoAddr(raw.localAddr), expected);
      if ("addr" in raw) return typed(fromDenoAddr(raw.addr), expected);
    }
    throw new Deno.errors.NotConnected(
      "Cannot get socket name: the socket is not bound or connected",
    );
  }

  /**
   * The peer's address, as Python's `getpeername()`. Pass the family to get
   * the `[host, port]` type without a cast.
   *
   * @param family Expect this family; throws if the address is of another.
   * @returns `[host, port]` or a Unix socket path.
   * @throws {Deno.errors.NotConnected} If not connected.
   * @throws {TypeError} If the address is not of `family`.
   */
  getpeername(family: typeof AF_INET | typeof AF_INET6): InetAddress;
  /**
   * The peer's address, as Python's `getpeername()`.
   *
   * @param family Expect this family; throws if the address is of another.
   * @returns `[host, port]` or a Unix socket path.
   * @throws {Deno.errors.NotConnected} If not connected.
   */
  getpeername(family?: Family): Address;
  getpeername(family?: Family): Address {
    const expected = checkFamily(family);
    const raw = this.#raw;
    if (isConn(raw)) return typed(fromDenoAddr(raw.remoteAddr), expected);
    const peer = this[kOps]?.peer?.() ?? null;
    if (peer !== null) return typed(peer, expected);
    throw new Deno.errors.NotConnected(
      "Cannot get peer name: the socket is not connected",
    );
  }

  /**
   * Python's `setsockopt(level, option, value)` for the options Deno can
   * set: {@linkcode TCP_NODELAY} (on by default here, as in asyncio),
   * {@linkcode SO_KEEPALIVE}, and {@linkcode SO_REUSEADDR} (Deno sets it on
   * every TCP listener already). Set before connecting, they apply to the
   * connection once it is up; set on a listening socket, to every connection
   * it accepts, as the kernel does.
   *
   * @param level {@linkcode SOL_SOCKET} or {@linkcode IPPROTO_TCP}.
   * @param option The option at that level.
   * @param value A number or boolean: non-zero turns the option on.
   * @throws {TypeError} If `value` is not a number or boolean.
   * @throws {Deno.errors.NotSupported} For an option Deno cannot set.
   */
  setsockopt(level: number, option: number, value: number | boolean): void {
    if (typeof value !== "number" && typeof value !== "boolean") {
      throw new TypeError(
        `Cannot set socket option: value must be a number or boolean, got ${typeof value}`,
      );
    }
    const on = Boolean(value);
    if (level === SOL_SOCKET && option === SO_REUSEADDR) return;
    if (level === IPPROTO_TCP && option === TCP_NODELAY) {
      this.#noDelay = on;
    } else if (level === SOL_SOCKET && option === SO_KEEPALIVE) {
      this.#keepAlive = on;
    } else {
      const name = OPTION_NAMES[`${level}:${option}`] ??
        `option ${option} at level ${level}`;
      throw new Deno.errors.NotSupported(
        `Cannot set socket option: ${name} is not supported on Deno (only TCP_NODELAY, SO_KEEPALIVE and SO_REUSEADDR are)`,
      );
    }
    if (this.#raw !== null) this.#apply(this.#raw);
  }

  /** Whether Nagle's algorithm is off for connections of this socket. */
  get noDelay(): boolean {
    return this.#noDelay;
  }

  #apply(raw: RawSocket): void {
    const tcp = raw as Partial<Deno.TcpConn>;
    try {
      tcp.setNoDelay?.(this.#noDelay);
      if (this.#keepAlive !== null) tcp.setKeepAlive?.(this.#keepAlive);
    } catch {
      // a connection reset before we got here: the first read reports it
    }
  }

  /**
   * Python's `shutdown(how)`. {@linkcode SHUT_WR} sends EOF to the peer
   * (after the bytes already given to `send()`) while reads go on until
   * the peer's own EOF; {@linkcode SHUT_RD} makes reads report EOF;
   * {@linkcode SHUT_RDWR} does both.
   *
   * @param how {@linkcode SHUT_RD}, {@linkcode SHUT_WR} or
   * {@linkcode SHUT_RDWR}.
   * @throws {RangeError} If `how` is none of those.
   * @throws {Deno.errors.NotConnected} If the socket is not a connection.
   * @throws {Deno.errors.NotSupported} For `SHUT_RD` on a socket no
   * dispatcher owns.
   */
  shutdown(how: number): void {
    if (how !== SHUT_RD && how !== SHUT_WR && how !== SHUT_RDWR) {
      throw new RangeError(`Cannot shut down: unknown how "${how}"`);
    }
    const raw = this.#raw;
    if (!isConn(raw)) {
      throw new Deno.errors.NotConnected(
        "Cannot shut down: the socket is not connected",
      );
    }
    const ops = this[kOps];
    if (ops !== null) return ops.shutdown(how !== SHUT_WR, how !== SHUT_RD);
    if (how === SHUT_RD) {
      throw new Deno.errors.NotSupported(
        "Cannot shut down reading: Deno has no shutdown(SHUT_RD); wrap the socket in a dispatcher first",
      );
    }
    // A peer already gone makes this reject; the next read reports it.
    raw.closeWrite().catch(ignore);
  }

  /**
   * Python's `sendto(data, address)` on a datagram socket: queues one
   * datagram for `address`.
   *
   * @param data The datagram.
   * @param address Where to send it.
   * @returns `data.length`, or 0 when the send queue is full.
   * @throws {Error} If this is not a datagram socket of a dispatcher.
   */
  sendto(data: Uint8Array, address: Address): number {
    const ops = this[kOps];
    if (ops?.sendto === undefined) {
      throw new Error(
        "Cannot send to an address: not a datagram socket (use send())",
      );
    }
    const sent = ops.sendto(data, address);
    // The first sendto() binds an unbound socket, as the kernel does.
    if (this.#raw === null) setRaw(this, ops.endpoint?.() ?? null);
    return sent;
  }

  /**
   * Python's `recvfrom(size)` on a datagram socket: the next datagram (cut
   * to `size` bytes; the rest of it is dropped, as UDP does) and its sender.
   *
   * @param size The most bytes to return.
   * @returns `[data, address]`.
   * @throws {Deno.errors.WouldBlock} If no datagram is waiting.
   * @throws {Error} If this is not a datagram socket of a dispatcher.
   */
  recvfrom(size: number): [data: Uint8Array, address: Address] {
    const ops = this[kOps];
    if (ops?.recvfrom === undefined) {
      throw new Error(
        "Cannot receive from an address: not a datagram socket (use recv())",
      );
    }
    return ops.recvfrom(size);
  }

  /**
   * A number unique to this socket in the process; the owning dispatcher's
   * {@linkcode Dispatcher.fileno} is the same number.
   *
   * @returns The socket's number.
   */
  fileno(): number {
    return this.#fd;
  }

  /**
   * Python's `setblocking(flag)`: every socket here is non-blocking, so
   * `false` is accepted and `true` is refused.
   *
   * @param flag Whether calls should block.
   * @throws {Deno.errors.NotSupported} If `flag` is true.
   */
  setblocking(flag: boolean): void {
    if (flag) {
      throw new Deno.errors.NotSupported(
        "Cannot set blocking mode: sockets are always non-blocking here",
      );
    }
  }

  /**
   * Reads from the connection (`Deno.Conn.read`).
   *
   * @param p Where to read into.
   * @returns The count read, or `null` at EOF.
   */
  read(p: Uint8Array): Promise<number | null> {
    return this.conn.read(p);
  }

  /**
   * Writes to the connection (`Deno.Conn.write`).
   *
   * @param p What to write.
   * @returns The count written.
   */
  write(p: Uint8Array): Promise<number> {
    return this.conn.write(p);
  }

  /**
   * Shuts down the write side (`Deno.Conn.closeWrite`).
   *
   * @returns A promise that settles once done.
   */
  closeWrite(): Promise<void> {
    return this.conn.closeWrite();
  }

  /** The connection's local address (`Deno.Conn.localAddr`). */
  get localAddr(): Deno.Addr {
    return this.conn.localAddr;
  }

  /** The connection's remote address (`Deno.Conn.remoteAddr`). */
  get remoteAddr(): Deno.Addr {
    return this.conn.remoteAddr;
  }

  /** The connection's readable stream (`Deno.Conn.readable`). */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.conn.readable;
  }

  /** The connection's writable stream (`Deno.Conn.writable`). */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.conn.writable;
  }

  /** Keeps the process alive while the connection is open. */
  ref(): void {
    this.conn.ref();
  }

  /** Lets the process exit while the connection is open. */
  unref(): void {
    this.conn.unref();
  }

  /**
   * Python's socket repr, adapted: `<SocketObject fd=3, family=AF_INET,
   * type=SOCK_STREAM, laddr=["127.0.0.1", 8080], raddr=["127.0.0.1",
   * 50000]>`, with `[closed]` after the class name once its `close()` ran.
   * An address not known (not bound, not connected) is left out, as in
   * Python.
   *
   * @example Show an accepted connection
   * ```ts
   * import { SocketObject } from "@asyncore/asyncore";
   * import assert from "node:assert/strict";
   *
   * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * using _client = await Deno.connect({
   *   hostname: "127.0.0.1",
   *   port: listener.addr.port,
   * });
   * using sock = new SocketObject(await listener.accept());
   * assert.match(
   *   `${sock}`,
   *   /^<SocketObject fd=\d+, family=AF_INET, type=SOCK_STREAM, laddr=\["127\.0\.0\.1", \d+\], raddr=\["127\.0\.0\.1", \d+\]>$/,
   * );
   * ```
   *
   * @returns The description.
   */
  toString(): string {
    const fields = [
      `fd=${this.#fd}`,
      `family=${familyName(this.family)}`,
      `type=${this.type === SOCK_DGRAM ? "SOCK_DGRAM" : "SOCK_STREAM"}`,
    ];
    if (!this.#closed) {
      for (
        const [name, get] of [
          ["laddr", () => this.getsockname()],
          ["raddr", () => this.getpeername()],
        ] as const
      ) {
        try {
          fields.push(`${name}=${showAddress(get())}`);
        } catch {
          // not bound or not connected: Python leaves the field out too
        }
      }
    }
    const closed = this.#closed ? " [closed]" : "";
    return `<SocketObject${closed} ${fields.join(", ")}>`;
  }

  /** @ignore Deno's inspect shows the repr. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** Closes the resource; safe to call more than once. */
  close(): void {
    const raw = this.#raw;
    if (raw === null) return;
    this.#closed = true;
    closeQuietly(raw);
  }

  /** Closes the resource: `using sock = …` works. */
  [Symbol.dispose](): void {
    this.close();
  }
}
