/**
 * {@linkcode Dispatcher}, Python's `asyncore.dispatcher`: a thin wrapper
 * around a connection or listener whose `handle_*` hooks the loop calls, plus
 * {@linkcode DispatcherWithSend} and {@linkcode FileDispatcher}.
 *
 * Each dispatcher keeps two layers apart, as CPython does: the
 * `handle_*_event()` methods track state (connecting → connected,
 * accepting), then call the user hooks (`handle_read()`, `handle_write()`,
 * `handle_connect()`, `handle_accept()`, `handle_close()`).
 *
 * @example An echo handler for accepted connections
 * ```ts
 * import { DispatcherWithSend } from "@asyncore/asyncore";
 *
 * class EchoHandler extends DispatcherWithSend {
 *   override handle_read(): void {
 *     const data = this.recv(8192);
 *     if (data.length > 0) this.send(data);
 *   }
 * }
 * ```
 *
 * @module
 */

import { isAcceptStall } from "./_accept.ts";
import { Channel, kChannel } from "./_channel.ts";
import { closeQuietly, ignore } from "./_quiet.ts";
import { setNoDelay } from "./_stream.ts";
import type { ConnectTarget } from "./_connect.ts";
import type { Stream } from "./_stream.ts";
import {
  type FileHandle,
  type FileSource,
  FileWrapper,
  type PipePair,
} from "./_file_wrapper.ts";
import { concatAll, EMPTY } from "./_bytes.ts";
import {
  bindError,
  describeError,
  formatAddress,
  isDisconnect,
  isInstance,
  kindOf,
} from "./_errors.ts";
import { fail, settle } from "./_routing.ts";
import type { HookResult } from "./_state.ts";
import { kSendsAhead } from "./_upgrade.ts";
import { wakerFor } from "./_waker.ts";
import { copyBytes } from "./_slab.ts";
import type { ClientTls, ServerTls, TlsStream } from "./_tls.ts";
import {
  cancelOwned,
  checkSeconds,
  schedule,
  type TimerCallback,
  type TimerHandle,
} from "./_timers.ts";
import {
  type DatagramEndpoint,
  inheritOptions,
  isConn,
  isListener,
  kOps,
  type RawSocket,
  setRaw,
  SocketObject,
} from "./_socket_object.ts";
import { type DatagramChannel, datagramChannel } from "./_datagram.ts";
import {
  compact_traceback,
  ExitNow,
  socket_map,
  type SocketMap,
} from "./loop.ts";
import {
  type Address,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  checkAddress,
  type Family,
  familyOf,
  fromDenoAddr,
  type InetAddress,
  SOCK_DGRAM,
  SOCK_STREAM,
} from "./socket.ts";

export {
  type DatagramEndpoint,
  type FileHandle,
  type FileSource,
  FileWrapper,
  type PipePair,
  type RawSocket,
  SocketObject,
};

/**
 * What a dispatcher can wrap: a {@linkcode SocketObject} (what `accept()`
 * returns), a connection, a listener, or a file.
 */
export type Socket = SocketObject | Deno.Conn | Deno.Listener | FileWrapper;

export type { HookResult };

/**
 * TLS settings for the client's side: {@linkcode Dispatcher.connect} and
 * {@linkcode Dispatcher.start_tls}.
 */
export interface TlsOptions {
  /** PEM certificates to trust instead of the system's roots. */
  caCerts?: string[];
  /** The name to verify the server's certificate against; default the host. */
  serverName?: string;
}

/**
 * TLS settings for the server's side: {@linkcode Dispatcher.bind} and
 * {@linkcode Dispatcher.start_tls}.
 */
export interface TlsServerOptions {
  /** The server's certificate chain, PEM. */
  cert: string;
  /** The certificate's private key, PEM. */
  key: string;
}

/** Options of {@linkcode Dispatcher.bind}. */
export interface BindOptions {
  /**
   * Listen for TLS (Deno's `listenTls`): every accepted connection is a
   * `Deno.TlsConn`, whose handshake runs with its first read. TCP only.
   */
  tls?: TlsServerOptions;
}

/** Options of {@linkcode Dispatcher.connect}. */
export interface ConnectOptions {
  /**
   * Connect over TLS (`true` for the defaults). TCP addresses only.
   *
   * @default {false}
   */
  tls?: boolean | TlsOptions;
  /**
   * Disable Nagle's algorithm (`TCP_NODELAY`), as asyncio does.
   *
   * @default {true}
   */
  noDelay?: boolean;
}

let lastId = 0;
/** Stalled accepts are logged at most this often, per listener. */
const STALL_LOG_MS = 60_000;

/** A dispatcher's inactivity timeout: made only once `timeout` is set. */
interface IdleTimeout {
  seconds: number;
  /** performance.now() when the timeout was set or last fired. */
  since: number;
  handle: TimerHandle;
}

function checkBytes(data: unknown, action: string): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot ${action}: data must be a Uint8Array, got ${kindOf(data)}`,
    );
  }
}

function chain(first: HookResult, second: () => HookResult): HookResult {
  if (first instanceof Promise) return first.then(second);
  return second();
}

function checkServerTls(
  tls: unknown,
  action: string,
): asserts tls is TlsServerOptions {
  const { cert, key } = (tls ?? {}) as Partial<TlsServerOptions>;
  if (typeof cert !== "string" || typeof key !== "string") {
    throw new TypeError(
      `Cannot ${action}: tls needs a PEM "cert" and "key" as strings`,
    );
  }
}

// Python's `""` host: INADDR_ANY, or in6addr_any on an AF_INET6 socket.
function isAnyHost(address: Address): address is InetAddress {
  return typeof address !== "string" && address[0] === "";
}

function anyHost(port: number, family: Family | undefined): InetAddress {
  return [family === AF_INET6 ? "::" : "0.0.0.0", port];
}

/**
 * Python's `asyncore.dispatcher`: wraps a connection or listener and turns
 * its readiness into calls of the `handle_*` hooks that subclasses override.
 *
 * @example A client that connects, sends, and reads the reply
 * ```ts
 * import { close_all, Dispatcher, loop } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then(async (conn) => {
 *   await conn.write(new TextEncoder().encode("hello"));
 *   conn.close();
 * });
 *
 * class Client extends Dispatcher {
 *   received = "";
 *   override handle_connect(): void {}
 *   override writable(): boolean {
 *     return !this.connected;
 *   }
 *   override handle_read(): void {
 *     this.received += new TextDecoder().decode(this.recv(1024));
 *   }
 *   override handle_close(): void {
 *     this.close();
 *   }
 * }
 * const client = new Client();
 * client.create_socket();
 * client.connect(["127.0.0.1", listener.addr.port]);
 * await loop({ timeout: 1 });
 * await served;
 * assert.equal(client.received, "hello");
 * close_all();
 * ```
 */
export class Dispatcher {
  /** Log every `send` of a {@linkcode DispatcherWithSend}. */
  debug = false;
  /** True once the connection is established. */
  connected = false;
  /** True once `listen()` was called. */
  accepting = false;
  /** True between `connect()` and its outcome. */
  connecting = false;
  /** Free for subclasses to mark a channel that is shutting down. */
  closing = false;
  /** The address given to `bind()`/`connect()`, or the peer's address. */
  addr: Address | null = null;
  /** `[family, type]` recorded by `create_socket()`. */
  family_and_type: [family: Family, type: number] | null = null;
  /**
   * `log_info()` types that are not printed. Shared by all dispatchers
   * unless a subclass or instance assigns its own set.
   *
   * @default {new Set(["warning"])}
   */
  declare ignore_log_types: ReadonlySet<string>;
  /** @ignore The I/O engine the loop drives; internal. */
  [kChannel]: Channel<Dispatcher> | null = null;
  #map: SocketMap;
  /**
   * The maps other than #map that add_channel() put this dispatcher in:
   * close() leaves them all. Created on first use: most dispatchers join one
   * map, and a set per idle connection cost ~150 bytes.
   */
  #otherMaps: Set<SocketMap> | null = null;
  #fileno: number | null = null;
  #socket: SocketObject | null = null;
  #bound: Deno.Listener | null = null;
  #idle: IdleTimeout | null = null;
  readonly #id = ++lastId;
  /** Connections accept() returned during the current accept event. */
  #taken: SocketObject[] | null = null;
  /** When a stalled accept was last logged (performance.now()). */
  #stallLoggedAt = -Infinity;

  /**
   * Wraps `sock` (an accepted `Deno.Conn`, a `Deno.Listener`, or a
   * {@linkcode FileWrapper}) and registers it in `map`; without `sock`, call
   * {@linkcode Dispatcher.create_socket} later.
   *
   * @param sock The resource to wrap.
   * @param map The socket map to join; default {@linkcode socket_map}.
   */
  constructor(sock?: Socket | null, map?: SocketMap | null) {
    this.#map = map ?? socket_map;
    if (sock) {
      this.set_socket(sock, map);
      const raw = this.#socket!.raw;
      if (isListener(raw)) {
        this.accepting = true;
        this.addr = fromDenoAddr(raw.addr);
      } else if (isConn(raw)) {
        this.connected = true;
        this.addr = fromDenoAddr(raw.remoteAddr);
      }
    }
  }

  /**
   * Python's `self.socket`: a {@linkcode SocketObject} with
   * `getsockname()`, `setsockopt()`, `shutdown()`, `sendto()`, … over the
   * Deno resource (its `raw`), or `null` before `create_socket()` or
   * `set_socket()`.
   */
  get socket(): SocketObject | null {
    return this.#socket;
  }

  /**
   * Registers this dispatcher in `map` under its {@linkcode fileno}.
   *
   * @param map The map to join; default the one given to the constructor.
   * @throws {Error} If there is no socket yet.
   */
  add_channel(map?: SocketMap | null): void {
    const channel = this[kChannel];
    if (this.#fileno === null || channel === null) {
      throw new Error("Cannot add channel: the dispatcher has no socket");
    }
    const target = map ?? this.#map;
    target.set(this.#fileno, this);
    if (target !== this.#map) (this.#otherMaps ??= new Set()).add(target);
    channel.waker = wakerFor(target);
  }

  /**
   * Removes this dispatcher from `map`; {@linkcode fileno} is `null` after.
   *
   * @param map The map to leave; default the one given to the constructor.
   */
  del_channel(map?: SocketMap | null): void {
    this.#leave(map ?? this.#map);
    this.#fileno = null;
    // No more passes will see this channel: write what it held back.
    this[kChannel]?.flushNow();
  }

  #leave(map: SocketMap): void {
    this.#otherMaps?.delete(map);
    const fd = this.#fileno;
    if (fd !== null && map.get(fd) === this) {
      map.delete(fd);
      // A loop waiting on this map re-checks it (it may now be empty).
      wakerFor(map).wake();
    }
  }

  /**
   * This channel's key in its socket map: a number unique in the process
   * (never reused, unlike an OS descriptor), or `null` once removed.
   *
   * @returns The channel number.
   */
  fileno(): number | null {
    return this.#fileno;
  }

  /**
   * Prepares a socket of `family` and `type` and joins the map. The Deno
   * resource itself is made by {@linkcode bind} or {@linkcode connect}.
   *
   * @param family {@linkcode AF_INET} (the default), {@linkcode AF_INET6} or
   * {@linkcode AF_UNIX}.
   * @param type {@linkcode SOCK_STREAM} (the default) for TCP or a Unix
   * stream socket, or {@linkcode SOCK_DGRAM} for UDP, which needs
   * `import "@asyncore/asyncore/unstable-udp"` and `--unstable-net`.
   * @throws {RangeError} If `family` or `type` is unknown or unsupported.
   */
  create_socket(family?: Family, type?: number): void {
    family ??= AF_INET;
    type ??= SOCK_STREAM;
    if (family !== AF_INET && family !== AF_INET6 && family !== AF_UNIX) {
      throw new RangeError(`Cannot create socket: unknown family "${family}"`);
    }
    if (type !== SOCK_STREAM && type !== SOCK_DGRAM) {
      throw new RangeError(`Cannot create socket: unknown type "${type}"`);
    }
    if (type === SOCK_DGRAM && family === AF_UNIX) {
      throw new RangeError(
        "Cannot create socket: Unix datagram sockets are not supported",
      );
    }
    // Throws, naming the import and the flag, when UDP is not available.
    const channel = type === SOCK_DGRAM ? datagramChannel(this, family) : null;
    this.family_and_type = [family, type];
    this.#attach(new SocketObject(null, family, type), null, channel);
  }

  /**
   * Wraps an existing resource and joins `map`.
   *
   * @param sock The connection, listener or file to wrap.
   * @param map The map to join; default the one given to the constructor.
   */
  set_socket(sock: Socket, map?: SocketMap | null): void {
    const wrapped = sock instanceof SocketObject
      ? sock
      : new SocketObject(sock);
    this.#attach(wrapped, map ?? null, null);
  }

  #attach(
    sock: SocketObject,
    map: SocketMap | null,
    datagram: DatagramChannel | null,
  ): void {
    const channel = (datagram as Channel<Dispatcher> | null) ??
      new Channel<Dispatcher>(this);
    this[kChannel] = channel;
    this.#socket = sock;
    sock[kOps] = channel;
    const raw = sock.raw;
    if (isListener(raw)) {
      channel.listener = raw;
    } else if (raw !== null) {
      setNoDelay(raw, sock.noDelay);
      channel.stream = raw as Stream;
    }
    channel.timeoutMs = (this.#idle?.seconds ?? 0) * 1000;
    this.#fileno = sock.fileno();
    this.add_channel(map);
  }

  /**
   * Kept for Python ports: Deno already sets `SO_REUSEADDR` on every TCP
   * listener, so a restarted server can bind its port at once.
   */
  set_reuse_addr(): void {}

  /**
   * Whether the loop should read (or accept) for this channel. Override it.
   *
   * @returns `true` by default.
   */
  readable(): boolean {
    return true;
  }

  /**
   * Whether the loop should call `handle_write()` when the channel can send.
   * Override it.
   *
   * @returns `true` by default.
   */
  writable(): boolean {
    return true;
  }

  /**
   * Starts accepting connections on the bound address.
   *
   * The listen queue is Deno's (511, capped by the kernel's `somaxconn`):
   * Deno fixes it when `bind()` opens the listener.
   *
   * @param backlog Python's backlog; validated, then left to the kernel.
   * @throws {RangeError} If `backlog` is not a non-negative integer.
   * @throws {Error} If `bind()` was not called first, or the socket is
   * already listening.
   */
  listen(backlog: number): void {
    if (!Number.isInteger(backlog) || backlog < 0) {
      throw new RangeError(
        `Cannot listen: backlog "${backlog}" is not a non-negative integer`,
      );
    }
    if (this.accepting) {
      throw new Error("Cannot listen: the socket is already listening");
    }
    const channel = this[kChannel];
    if (this.#bound === null || channel === null || channel.closed) {
      throw new Error("Cannot listen: call bind() first");
    }
    this.accepting = true;
    channel.listener = this.#bound;
  }

  /**
   * Binds to `address` (`[host, port]`, port 0 for any free port, or a Unix
   * socket path). Host `""` means every interface, as in Python: `0.0.0.0`,
   * or `::` on an {@linkcode AF_INET6} socket. Deno opens the listener here, so an address in use throws
   * `Deno.errors.AddrInUse` ("Cannot bind: address 127.0.0.1:8080 is in
   * use", Deno's own error as `cause`; a host longer than 64 characters is
   * cut there, with "…") at once, and {@linkcode getsockname}
   * reports the real port.
   * With `tls`, every connection accepted is TLS: its handshake runs first,
   * and its first `handle_read()` comes after it. A failed handshake (a
   * client that speaks plain text or garbage) reaches the connection's
   * `handle_error()` once, with Deno's class (`Deno.errors.InvalidData`)
   * and a message naming the client ("Cannot complete TLS handshake with
   * 127.0.0.1:50112: received corrupt message of type InvalidContentType");
   * the connection is closed right after, even when `handle_error()` keeps
   * it or rethrows. A client that leaves mid-handshake is a disconnect:
   * `handle_close()`. See docs/tls.md.
   *
   * @example A TLS server
   * ```ts ignore
   * import { Dispatcher } from "@asyncore/asyncore";
   *
   * const server = new Dispatcher();
   * server.create_socket();
   * server.bind(["0.0.0.0", 8443], {
   *   tls: {
   *     cert: Deno.readTextFileSync("cert.pem"),
   *     key: Deno.readTextFileSync("key.pem"),
   *   },
   * });
   * server.listen(5);
   * ```
   *
   * @param address Where to listen.
   * @param options `tls`: a certificate and key to serve TLS with.
   * @throws {TypeError} If `address` is malformed or of another family, or
   * `tls` is given for a Unix socket or lacks a PEM `cert` or `key`.
   * @throws {Deno.errors.AddrInUse} If the address is taken.
   * @throws {Deno.errors.PermissionDenied} If the port is privileged; other
   * failures keep Deno's error class too, with the address in the message.
   * @throws {Error} If the socket is already bound or connected, or a
   * `connect()` is in flight ("Cannot bind: the socket is connecting to
   * 127.0.0.1:8080"; Python's `EINVAL`).
   */
  bind(address: Address, options?: BindOptions): void {
    options ??= {};
    checkAddress(address, "address");
    this.#checkFamily(address, "bind");
    const { tls } = options;
    if (tls !== undefined) checkServerTls(tls, "bind");
    if (this.#bound !== null || (this.#socket?.raw ?? null) !== null) {
      throw new Error("Cannot bind: the socket is already bound or connected");
    }
    // Python's bind() fails with EINVAL here; a listener opened now would
    // stand beside the connection (getsockname() would report its port).
    if (this.connecting) {
      throw new Error(
        `Cannot bind: the socket is connecting to ${formatAddress(this.addr!)}`,
      );
    }
    const datagram = this.#datagram();
    const local = isAnyHost(address)
      ? anyHost(address[1], this.family_and_type?.[0])
      : address;
    if (datagram !== null) {
      if (tls !== undefined) {
        throw new TypeError("Cannot bind: TLS needs a TCP socket");
      }
      setRaw(this.#socket!, datagram.open(local as InetAddress));
      this.addr = address;
      return;
    }
    if (tls !== undefined && typeof address === "string") {
      throw new TypeError("Cannot bind: TLS needs a TCP address");
    }
    let listener: Deno.Listener;
    try {
      listener = typeof local === "string"
        ? Deno.listen({ transport: "unix", path: local })
        : tls === undefined
        ? Deno.listen({ hostname: local[0], port: local[1] })
        : Deno.listenTls({
          hostname: local[0],
          port: local[1],
          cert: tls.cert,
          key: tls.key,
        });
    } catch (error) {
      throw bindError(error, address);
    }
    this.addr = address;
    this.#bound = listener;
    if (this.#socket === null) this.#socket = new SocketObject(listener);
    else setRaw(this.#socket, listener);
  }

  #datagram(): DatagramChannel | null {
    const channel = this[kChannel];
    return channel !== null && "open" in channel
      ? channel as DatagramChannel
      : null;
  }

  /**
   * Starts connecting to `address`; returns at once. Success calls
   * `handle_connect()` (then `connected` is true); failure reaches
   * `handle_error()` once, whose default logs and calls `handle_close()`,
   * with Deno's error class and a message naming the address ("Cannot
   * connect: example.invalid:80: failed to lookup address information: …"; a
   * host longer than 64 characters is cut there, with "…");
   * the channel is closed after `handle_error()` in any case.
   * With `tls`, `handle_connect()` runs once the TLS handshake is done too,
   * and a failed handshake reads "Cannot complete TLS handshake with
   * 127.0.0.1:8443: invalid peer certificate: UnknownIssuer".
   *
   * @param address `[host, port]` or a Unix socket path.
   * @param options TLS and `TCP_NODELAY` settings; default plain TCP with
   * `TCP_NODELAY`.
   * @throws {TypeError} If `address` is malformed or of another family.
   * @throws {Error} If `create_socket()` was not called, the socket is bound
   * or connected, or a connect is already in flight ("Cannot connect: already
   * connecting to 127.0.0.1:8080"). A UDP socket may connect again: that
   * only changes its peer.
   */
  connect(address: Address, options?: ConnectOptions): void {
    checkAddress(address, "address");
    this.#checkFamily(address, "connect");
    const channel = this[kChannel];
    if (channel === null || channel.closed) {
      throw new Error("Cannot connect: call create_socket() first");
    }
    const sock = this.#socket!;
    const datagram = this.#datagram();
    if (datagram !== null) {
      if (typeof address === "string" || options?.tls) {
        throw new TypeError(
          "Cannot connect: a UDP socket needs a [host, port]",
        );
      }
      const endpoint = datagram.setPeer(address);
      if (sock.raw === null) setRaw(sock, endpoint);
      this.connected = false;
      this.connecting = true;
      this.addr = address;
      return;
    }
    if (sock.raw !== null) {
      throw new Error(
        "Cannot connect: the socket is already bound or connected",
      );
    }
    // A second connect would open a second connection and lose the first.
    if (this.connecting || channel.stream !== null) {
      throw new Error(
        `Cannot connect: already connecting to ${formatAddress(this.addr!)}`,
      );
    }
    const { tls = false, noDelay = sock.noDelay } = options ?? {};
    let target: ConnectTarget;
    if (typeof address === "string") {
      if (tls) throw new TypeError("Cannot connect: TLS needs a TCP address");
      target = { transport: "unix", path: address };
    } else {
      target = {
        transport: "tcp",
        hostname: address[0],
        port: address[1],
        tls: tls === false ? null : tls === true ? {} : tls,
      };
    }
    this.connected = false;
    this.connecting = true;
    this.addr = address;
    channel.connect(target, noDelay);
  }

  /**
   * Upgrades the connection to TLS in place (STARTTLS), on the client's side
   * with {@linkcode TlsOptions}, or on the server's side when `options` has a
   * `cert` and `key`. Call it once the protocol agreed to upgrade (a client
   * after reading `220 Ready`; a server after sending it).
   *
   * The channel parks for it: bytes sent before the call go out in the
   * clear, bytes sent after it are held and go out encrypted (on an
   * `AsyncChat`, bytes pushed before and after it, and on a
   * {@linkcode DispatcherWithSend}, bytes sent before and after it, wherever
   * they wait); the read in flight is handed to TLS; input received before
   * the call and not yet read is dropped, since a man in the middle could
   * have injected it (CVE-2011-0411). Awaiting the promise is optional: a failed handshake
   * also reaches `handle_error()` through the connection, once ("Cannot
   * complete TLS handshake with 127.0.0.1:50112: …"), even when a hook
   * awaits the promise and lets the rejection through; the channel is
   * closed after it. An untrusted certificate or a peer that does not speak
   * TLS fails with `Deno.errors.InvalidData` (node:tls's `code`, such as
   * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, kept); a peer that leaves mid-way is
   * a disconnect. Once upgraded, `close()` ends TLS with `close_notify`,
   * then the connection, as it does on a TLS listener's connections. There
   * is no way back to plain text (Python's `SSLSocket.unwrap()`): a peer's
   * `close_notify` ends the connection (see docs/tls.md).
   *
   * @example A client that upgrades once the server agrees
   * ```ts ignore
   * import { AsyncChat } from "@asyncore/asyncore";
   *
   * class Client extends AsyncChat {
   *   override async found_terminator(): Promise<void> {
   *     const line = new TextDecoder().decode(this._get_data());
   *     if (line.startsWith("220 Ready")) {
   *       await this.start_tls({ caCerts: [Deno.readTextFileSync("ca.pem")] });
   *       this.push(new TextEncoder().encode("EHLO me\r\n"));
   *     }
   *   }
   * }
   * ```
   *
   * @param options The client's or the server's TLS settings.
   * @returns A promise that resolves once the handshake is done, and
   * rejects with its failure.
   * @throws {TypeError} If a `cert` or `key` is not a string, or the
   * connection is a Unix socket.
   * @throws {Error} If there is no connection, or it is TLS already
   * ("Cannot start TLS: the connection is already TLS").
   */
  start_tls(options?: TlsOptions | TlsServerOptions): Promise<void> {
    options ??= {};
    const channel = this[kChannel];
    if (channel === null || channel.stream === null || this.accepting) {
      throw new Error("Cannot start TLS: the dispatcher is not connected");
    }
    if (typeof this.addr === "string") {
      throw new TypeError("Cannot start TLS: TLS needs a TCP connection");
    }
    // A Deno.TlsConn (implicit TLS) and an upgraded stream both have one
    // (the upgraded stream's is a promise, so isTlsConn() would not do).
    if ("handshake" in channel.stream) {
      throw new Error("Cannot start TLS: the connection is already TLS");
    }
    let settings: ServerTls | ClientTls;
    if ("cert" in options || "key" in options) {
      checkServerTls(options, "start TLS");
      settings = { cert: options.cert, key: options.key };
    } else {
      const { caCerts, serverName } = options as TlsOptions;
      settings = {
        serverName: serverName ?? this.addr?.[0] ?? "localhost",
        ...(caCerts ? { caCerts } : {}),
      };
    }
    let secure: TlsStream | null = null;
    const peer = this.addr === null ? "the peer" : formatAddress(this.addr);
    const done = channel.upgrade(async (raw, first) => {
      // node:tls loads only when a program upgrades.
      const { startTls } = await import("./_tls.ts");
      secure = startTls(raw, first, settings, peer);
      return secure;
    }, this[kSendsAhead]()).then(() => secure!.handshake).catch((error) => {
      // The connection's failure, whichever of the promise and the channel's
      // read reports it first: handle_error() gets it once.
      channel.error ??= error;
      throw error;
    });
    // Failures reach handle_error() through the connection too.
    done.catch(ignore);
    return done;
  }

  /**
   * @ignore Whether bytes queued here, ahead of the channel's outbox, must
   * go out before a STARTTLS fence; internal.
   */
  [kSendsAhead](): boolean {
    return false;
  }

  #checkFamily(address: Address, action: string): void {
    const family = this.family_and_type?.[0];
    if (family === undefined || isAnyHost(address)) return;
    const given = familyOf(address);
    if (given !== family) {
      throw new TypeError(
        `Cannot ${action}: address ${
          formatAddress(address)
        } does not belong to the socket's family ${family}`,
      );
    }
  }

  /**
   * Takes an accepted connection: `[sock, address]`, or `null` when none is
   * waiting (Python's `EWOULDBLOCK`), the client gave up, or the process is
   * out of descriptors or buffers (EMFILE, ENFILE, ENOBUFS, ENOMEM). Such a
   * stall never closes the listener: it is logged with `log_info()` (at most
   * once a minute), accepting rests for 100 ms to 1 s, then resumes. `sock`
   * is a {@linkcode SocketObject}, which is also a `Deno.Conn`.
   *
   * @returns The new connection and its peer address, or `null`.
   * @throws {Error} Any other accept error.
   */
  accept(): [sock: SocketObject, address: Address] | null {
    let conn: Deno.Conn | null;
    try {
      conn = this[kChannel]?.accept() ?? null;
    } catch (error) {
      if (!isAcceptStall(error)) throw error;
      const now = performance.now();
      if (now - this.#stallLoggedAt >= STALL_LOG_MS) {
        this.#stallLoggedAt = now;
        this.log_info(
          `Cannot accept: ${
            (error as Error).message
          }; accepting again in at most 1 s (logged once a minute)`,
          "error",
        );
      }
      return null;
    }
    if (conn === null) return null;
    const sock = new SocketObject(conn);
    if (this.#socket !== null) inheritOptions(sock, this.#socket);
    this.#taken?.push(sock);
    return [sock, fromDenoAddr(conn.remoteAddr)];
  }

  /**
   * Queues `data` for sending and returns how many bytes were taken: all of
   * them unless the outbox is near its 256 KiB mark, and 0 when it is full
   * (Python's `EWOULDBLOCK`) or the connection is not up yet. Taken bytes
   * are never lost while the peer reads, even across `close()`. On a closed
   * or broken connection it calls `handle_close()` and returns 0, as Python
   * does.
   *
   * @param data The bytes to send.
   * @returns The number of bytes taken.
   * @throws {TypeError} If `data` is not a `Uint8Array`.
   * @throws {Error} If there is no socket, or on a non-disconnect error.
   */
  send(data: Uint8Array): number {
    checkBytes(data, "send");
    const channel = this.#ioFor("send");
    // After shutdown(SHUT_WR), Python's send() fails with EPIPE: a disconnect.
    if (channel.closed || channel.writeShut || channel.failed) {
      settle(this, this.handle_close());
      return 0;
    }
    const error = channel.error;
    if (error !== null && !this.accepting && !this.connecting) {
      this.#raiseFailure();
      if (!isDisconnect(error)) throw error;
      settle(this, this.handle_close());
      return 0;
    }
    return channel.send(data);
  }

  /**
   * Bytes handed to `send()` that the connection has not written yet (as
   * WebSocket's `bufferedAmount`; ours, not Python's). Servers use it for
   * backpressure: stop reading from a peer, or drop it, while its output
   * piles up. Subclasses that queue more ({@linkcode DispatcherWithSend},
   * `AsyncChat`) count their queues too. O(1).
   *
   * @example Stop reading while more than 1 MiB is pending
   * ```ts
   * import { DispatcherWithSend } from "@asyncore/asyncore";
   * import assert from "node:assert/strict";
   *
   * class Echo extends DispatcherWithSend {
   *   override readable(): boolean {
   *     return this.bufferedAmount < 1024 * 1024;
   *   }
   * }
   * const echo = new Echo();
   * echo.create_socket();
   * echo.send(new Uint8Array(10)); // not connected yet: queued
   * assert.equal(echo.bufferedAmount, 10);
   * assert.ok(echo.readable());
   * echo.close();
   * ```
   *
   * @returns The byte count.
   */
  get bufferedAmount(): number {
    return this[kChannel]?.outboxBytes ?? 0;
  }

  /**
   * Takes up to `size` received bytes. At EOF, on a reset connection or after
   * `close()`, calls `handle_close()` and returns an empty array, as Python
   * does. The bytes are the caller's to keep, like Python's `bytes`: a large
   * read hands its buffer over, so the next read needs a new one. To move
   * bulk data without an allocation per read, use {@linkcode recv_into}.
   *
   * @param size The most bytes to return.
   * @returns The bytes, or an empty array when the connection has ended.
   * @throws {TypeError} If `size` is not a number.
   * @throws {RangeError} If `size` is not a positive integer.
   * @throws {Deno.errors.WouldBlock} If nothing has arrived yet.
   */
  recv(size: number): Uint8Array {
    if (typeof size !== "number") {
      throw new TypeError(
        `Cannot recv: size must be a number, got ${typeof size}`,
      );
    }
    if (!Number.isInteger(size) || size <= 0) {
      throw new RangeError(
        `Cannot recv: size "${size}" is not a positive integer`,
      );
    }
    const channel = this.#ioFor("recv");
    this.#raiseFailure();
    const data = channel.recv(size);
    if (data !== null) return data;
    this.#ended();
    return new Uint8Array(0);
  }

  /**
   * Python's `socket.recv_into()`: copies up to `nbytes` received bytes into
   * `buffer` and returns how many. Unlike {@linkcode recv}, it leaves the
   * connection's read buffer with the connection, so a server that reads
   * into one buffer of its own allocates nothing per read (bulk echo: see
   * docs/benchmarks.md). At EOF, on a reset connection or after `close()`,
   * calls `handle_close()` and returns 0.
   *
   * @example Echo through one scratch buffer
   * ```ts
   * import { DispatcherWithSend } from "@asyncore/asyncore";
   *
   * const scratch = new Uint8Array(65536);
   * class Echo extends DispatcherWithSend {
   *   override handle_read(): void {
   *     const n = this.recv_into(scratch);
   *     // send() copies what it takes, so the scratch is free again.
   *     if (n > 0) this.send(scratch.subarray(0, n));
   *   }
   * }
   * ```
   *
   * @param buffer Where the bytes go.
   * @param nbytes The most bytes to copy; 0 (the default) for
   * `buffer.length`.
   * @returns The number of bytes copied, 0 once the connection has ended.
   * @throws {TypeError} If `buffer` is not a `Uint8Array` or `nbytes` not a
   * number.
   * @throws {RangeError} If `buffer` is empty, or `nbytes` is negative, not
   * an integer or more than `buffer.length`.
   * @throws {Deno.errors.WouldBlock} If nothing has arrived yet.
   */
  recv_into(buffer: Uint8Array, nbytes = 0): number {
    if (!(buffer instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot recv_into: buffer must be a Uint8Array, got ${kindOf(buffer)}`,
      );
    }
    if (typeof nbytes !== "number") {
      throw new TypeError(
        `Cannot recv_into: nbytes must be a number, got ${kindOf(nbytes)}`,
      );
    }
    if (!Number.isInteger(nbytes) || nbytes < 0 || nbytes > buffer.length) {
      throw new RangeError(
        `Cannot recv_into: nbytes "${nbytes}" is not an integer from 0 to the buffer's length (${buffer.length})`,
      );
    }
    if (buffer.length === 0) {
      throw new RangeError(
        "Cannot recv_into: buffer is empty (0 would read as the end of the stream)",
      );
    }
    const channel = this.#ioFor("recv_into");
    this.#raiseFailure();
    const n = channel.recvInto(buffer, nbytes === 0 ? buffer.length : nbytes);
    if (n !== null) return n;
    this.#ended();
    return 0;
  }

  // The connection ended under recv(): an async handle_close() is not
  // awaited (recv() returns now), but its rejection still reaches
  // handle_error().
  #ended(): void {
    settle(this, this.handle_close());
  }

  #ioFor(action: string): Channel<Dispatcher> {
    const channel = this[kChannel];
    if (channel === null) {
      throw new Error(
        `Cannot ${action}: the dispatcher has no socket (call create_socket() or pass a connection)`,
      );
    }
    return channel;
  }

  /**
   * Leaves every map {@linkcode add_channel} put it in (a loop on any of them
   * no longer waits for it) and closes the resource; bytes already taken by
   * `send()` are still delivered first. Safe to call more than once.
   */
  close(): void {
    this.connected = false;
    this.accepting = false;
    this.connecting = false;
    const others = this.#otherMaps;
    if (others !== null) { for (const map of others) this.#leave(map); }
    this.del_channel();
    cancelOwned(this);
    this[kChannel]?.close();
    const bound = this.#bound;
    if (bound !== null) {
      this.#bound = null;
      try {
        bound.close();
      } catch {
        // listen() handed it to the channel, which closed it already
      }
    }
  }

  /** Closes this dispatcher: `using client = new Client()` works. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * The local address: `[host, port]` (the real port after binding port 0)
   * or a Unix socket path. Pass the family to get the `[host, port]` type
   * without a cast.
   *
   * @example The port a server got
   * ```ts
   * import { AF_INET, close_all, Dispatcher } from "@asyncore/asyncore";
   * import assert from "node:assert/strict";
   *
   * const server = new Dispatcher();
   * server.create_socket(AF_INET);
   * server.bind(["127.0.0.1", 0]);
   * const [host, port] = server.getsockname(AF_INET);
   * assert.equal(host, "127.0.0.1");
   * assert.ok(port > 0);
   * close_all();
   * ```
   *
   * @param family Expect this family; throws if the address is of another.
   * @returns The local address.
   * @throws {Deno.errors.NotConnected} If not bound or connected.
   * @throws {TypeError} If the address is not of `family`.
   */
  getsockname(family: typeof AF_INET | typeof AF_INET6): InetAddress;
  /**
   * The local address: `[host, port]` or a Unix socket path.
   *
   * @param family Expect this family; throws if the address is of another.
   * @returns The local address.
   * @throws {Deno.errors.NotConnected} If not bound or connected.
   */
  getsockname(family?: Family): Address;
  getsockname(family?: Family): Address {
    return this.#liveSocket("get socket name").getsockname(family);
  }

  /**
   * The peer's address. Pass the family to get the `[host, port]` type
   * without a cast.
   *
   * @param family Expect this family; throws if the address is of another.
   * @returns `[host, port]` or a Unix socket path.
   * @throws {Deno.errors.NotConnected} If not connected.
   * @throws {TypeError} If the address is not of `family`.
   */
  getpeername(family: typeof AF_INET | typeof AF_INET6): InetAddress;
  /**
   * The peer's address.
   *
   * @param family Expect this family; throws if the address is of another.
   * @returns `[host, port]` or a Unix socket path.
   * @throws {Deno.errors.NotConnected} If not connected.
   */
  getpeername(family?: Family): Address;
  getpeername(family?: Family): Address {
    return this.#liveSocket("get peer name").getpeername(family);
  }

  #liveSocket(action: string): SocketObject {
    const channel = this[kChannel];
    const sock = this.#socket;
    if (sock === null || channel === null || channel.closed) {
      throw new Deno.errors.NotConnected(
        `Cannot ${action}: the socket is not bound or connected`,
      );
    }
    // A connect that landed before handle_connect_event() ran.
    if (sock.raw === null && channel.stream !== null) {
      setRaw(sock, channel.stream as Deno.Conn);
    }
    return sock;
  }

  /**
   * Calls `fn` once, `seconds` from now, inside a loop pass, as
   * {@linkcode call_later} does, but on this dispatcher's map and owned by
   * it: an error `fn` throws (or rejects with) goes to `handle_error()`, and
   * `close()` cancels the call.
   *
   * @example Greet a client a moment after it connects
   * ```ts
   * import { AsyncChat } from "@asyncore/asyncore";
   *
   * class Greeter extends AsyncChat {
   *   constructor(conn: Deno.Conn) {
   *     super(conn);
   *     this.call_later(0.1, () => this.push(new TextEncoder().encode("hi\r\n")));
   *   }
   * }
   * ```
   *
   * @param seconds Delay; `0` runs it on the next pass.
   * @param fn The callback.
   * @returns A handle to cancel or reset the call.
   * @throws {TypeError} If `seconds` is not a number or `fn` not a function.
   * @throws {RangeError} If `seconds` is negative or not finite.
   */
  call_later(seconds: number, fn: TimerCallback): TimerHandle {
    return schedule(this.#map, seconds, false, fn, this);
  }

  /**
   * Calls `fn` every `seconds` inside loop passes until cancelled or until
   * this dispatcher closes; errors go to `handle_error()`. See
   * {@linkcode call_every}.
   *
   * @example Send a keep-alive every 30 seconds
   * ```ts
   * import { AsyncChat } from "@asyncore/asyncore";
   *
   * class Pinger extends AsyncChat {
   *   constructor(conn: Deno.Conn) {
   *     super(conn);
   *     this.call_every(30, () => this.push(new TextEncoder().encode("PING\r\n")));
   *   }
   * }
   * ```
   *
   * @param seconds The period, greater than 0.
   * @param fn The callback.
   * @returns A handle to cancel the calls or change their period.
   * @throws {TypeError} If `seconds` is not a number or `fn` not a function.
   * @throws {RangeError} If `seconds` is not positive and finite.
   */
  call_every(seconds: number, fn: TimerCallback): TimerHandle {
    return schedule(this.#map, seconds, true, fn, this);
  }

  /**
   * Seconds of inactivity after which the loop calls
   * {@linkcode Dispatcher.handle_timeout}, or `null` (the default) for none.
   * Activity is a completed read or write of at least one byte, an accepted
   * connection, or a finished connect; the clock also restarts when the
   * timeout is set and each time it fires. Assign it in the constructor (or
   * at any time); it costs one timer per dispatcher, moved lazily, and one
   * clock read per completed read or write. It also bounds `close()`: bytes
   * still queued are written while the peer takes them, but a peer that
   * takes nothing for `timeout` seconds is let go of (the rest is dropped)
   * instead of holding the connection forever.
   *
   * @example Drop clients that stay silent for five minutes
   * ```ts
   * import { AsyncChat } from "@asyncore/asyncore";
   *
   * class Handler extends AsyncChat {
   *   constructor(conn: Deno.Conn) {
   *     super(conn);
   *     this.timeout = 300;
   *   }
   * }
   * ```
   *
   * @returns The timeout in seconds, or `null`.
   */
  get timeout(): number | null {
    return this.#idle?.seconds ?? null;
  }

  /**
   * Sets the inactivity timeout and restarts its clock; `null` turns it off.
   *
   * @param seconds The timeout in seconds, or `null`.
   * @throws {TypeError} If `seconds` is neither a number nor `null`.
   * @throws {RangeError} If `seconds` is not positive and finite.
   */
  set timeout(seconds: number | null) {
    if (seconds !== null) checkSeconds(seconds, "set timeout", true);
    this.#idle?.handle.cancel();
    this.#idle = null;
    const channel = this[kChannel];
    if (channel !== null) channel.timeoutMs = (seconds ?? 0) * 1000;
    if (seconds === null || channel?.closed) return;
    const handle = schedule(
      this.#map,
      seconds,
      false,
      () => this.#onIdle(),
      this,
    );
    this.#idle = { seconds: seconds!, since: performance.now(), handle };
  }

  // The timer fires when the timeout could have expired; if there was
  // activity since, it moves to the new expiry instead (no timer per read).
  #onIdle(): HookResult {
    const idle = this.#idle!;
    const now = performance.now();
    const last = Math.max(this[kChannel]?.activeAt ?? 0, idle.since);
    const left = last + idle.seconds * 1000 - now;
    if (left > 0) {
      idle.handle.reset(left / 1000);
      return;
    }
    // Still open after the hook (it may not close): fire again after
    // another quiet period.
    idle.since = now;
    idle.handle.reset(idle.seconds);
    return this.handle_timeout();
  }

  /**
   * Writes a "hit" log line to stderr; override to log elsewhere.
   *
   * @param message What to log.
   */
  log(message: unknown): void {
    console.error(`log: ${String(message)}`);
  }

  /**
   * Prints `type: message` to stdout unless `type` is in
   * {@linkcode ignore_log_types}; override to log elsewhere.
   *
   * @param message What to log.
   * @param type `"info"` (the default), `"warning"`, `"error"`, …
   */
  log_info(message: string, type?: string): void {
    type ??= "info";
    if (!this.ignore_log_types.has(type)) console.log(`${type}: ${message}`);
  }

  /**
   * Dispatches a read event: `handle_accept()` on a listener, otherwise
   * finishes a pending connect, then `handle_read()`.
   *
   * @returns What the hook returned.
   */
  handle_read_event(): HookResult {
    if (this.accepting) return this.#acceptEvent();
    if (this[kChannel]?.failed) return;
    if (!this.connected && this.connecting) {
      return chain(this.handle_connect_event(), () => this.handle_read());
    }
    this.#raiseFailure();
    return this.handle_read();
  }

  // A failed transport (a connect or TLS handshake that failed, a read or
  // write error that is no disconnect): its error is thrown once, by an
  // event or by recv()/send(), for the loop to pass to handle_error(), and
  // the channel closes right after that, whatever handle_error() did; until
  // then, events do nothing. So no pass reports it again, even when
  // handle_error() kept the channel open or rethrew.
  #raiseFailure(): void {
    const failure = this[kChannel]?.takeFailure() ?? null;
    if (failure === null) return;
    queueMicrotask(() => this.close());
    throw failure;
  }

  /**
   * Finishes a connect: throws its error, or calls `handle_connect()` and
   * marks the channel connected.
   *
   * @returns What `handle_connect()` returned.
   * @throws {Error} The connect error (the loop passes it to `handle_error()`).
   */
  handle_connect_event(): HookResult {
    const channel = this[kChannel];
    this.#raiseFailure();
    const sock = this.#socket;
    if (sock !== null && sock.raw === null && channel?.stream) {
      setRaw(sock, channel.stream as Deno.Conn);
    }
    const result = this.handle_connect();
    this.connected = true;
    this.connecting = false;
    return result;
  }

  /**
   * Dispatches a write event: ignored on a listener, finishes a pending
   * connect, then `handle_write()`.
   *
   * @returns What the hook returned.
   */
  handle_write_event(): HookResult {
    if (this.accepting || this[kChannel]?.failed) return;
    if (!this.connected && this.connecting) {
      return chain(this.handle_connect_event(), () => this.handle_write());
    }
    this.#raiseFailure();
    return this.handle_write();
  }

  /**
   * Dispatches an exceptional event: `handle_close()` on a socket error,
   * otherwise `handle_expt()`. Deno reports no out-of-band data, so the loop
   * never calls this itself; {@linkcode readwrite} does for `POLLPRI`.
   *
   * @returns What the hook returned.
   */
  handle_expt_event(): HookResult {
    const error = this[kChannel]?.error ?? null;
    if (error !== null) return this.handle_close();
    return this.handle_expt();
  }

  /**
   * Called with any value a hook threw or rejected with: an `Error`, a
   * string, `undefined`, an object that cannot become a string, a revoked
   * Proxy. The default logs it with a compact traceback (a value that cannot
   * be formatted reads `<exception str() failed>`) and calls
   * `handle_close()`; should that throw or reject too, it logs that error and
   * calls `close()`. So one broken handler cannot stop a server, for any
   * thrown value: its channel is closed and the loop serves the others. A
   * `handle_error()` that throws or rejects (with any value, `undefined`
   * too) makes {@linkcode loop} reject with that value, as Python's `loop()`
   * raises it.
   * A failed connection (a connect or TLS handshake that failed, a read or
   * write error that is no disconnect) is passed here once, and is closed
   * right after, whatever this returns or throws.
   *
   * @param error What was thrown.
   * @returns What `handle_close()` returned.
   * @throws {ExitNow} If `handle_close()` throws it.
   */
  handle_error(error: unknown): HookResult {
    this.#logError(error);
    let result: HookResult;
    try {
      result = this.handle_close();
    } catch (closeError) {
      return this.#closeAfter(closeError);
    }
    if (result instanceof Promise) {
      return result.then(
        undefined,
        (closeError) => this.#closeAfter(closeError),
      );
    }
    return result;
  }

  // Calls handle_accept(). An error it throws or rejects with while handling
  // a connection it took belongs to that connection, not to the listener:
  // the connection's dispatcher gets it (its default handle_error() closes
  // it), or, when none wraps it yet, the connection is closed and the error
  // logged. Only an error raised before any accept() reaches the listener's
  // own handle_error().
  #acceptEvent(): HookResult {
    const taken: SocketObject[] = [];
    this.#taken = taken;
    let result: HookResult;
    try {
      result = this.handle_accept();
    } catch (error) {
      return this.#blame(taken, error);
    } finally {
      this.#taken = null;
    }
    if (result instanceof Promise) {
      return result.then(undefined, (error) => this.#blame(taken, error));
    }
    return result;
  }

  #blame(taken: SocketObject[], error: unknown): void {
    const conn = taken.at(-1);
    if (conn === undefined || isInstance(error, ExitNow)) throw error;
    for (const obj of this.#map.values()) {
      if (obj instanceof Dispatcher && obj.#socket?.raw === conn.raw) {
        return fail(obj, error);
      }
    }
    closeQuietly(conn); // the hook may have closed it already
    this.#logError(
      error,
      `accepted connection from ${
        formatAddress(fromDenoAddr(conn.remoteAddr))
      }`,
    );
  }

  #closeAfter(error: unknown): void {
    if (isInstance(error, ExitNow)) throw error;
    this.#logError(error);
    this.close();
  }

  #logError(error: unknown, closing?: string): void {
    let summary: string;
    try {
      const [, type, value, info] = compact_traceback(error);
      summary = `${type}:${value} ${info}`;
    } catch {
      summary = describeError(error);
    }
    if (closing === undefined) {
      try {
        closing = `channel ${this.toString()}`;
      } catch {
        closing = `channel <toString() failed for object at 0x${
          this.#id.toString(16)
        }>`;
      }
    }
    this.log_info(
      `uncaptured exception, closing ${closing} (${summary})`,
      "error",
    );
  }

  /** Called for out-of-band data; the default logs a warning. */
  handle_expt(): HookResult {
    this.log_info("unhandled incoming priority event", "warning");
  }

  /** Called when data (or EOF) can be read; the default logs a warning. */
  handle_read(): HookResult {
    this.log_info("unhandled read event", "warning");
  }

  /** Called when the channel can send; the default logs a warning. */
  handle_write(): HookResult {
    this.log_info("unhandled write event", "warning");
  }

  /** Called once an outgoing connection is up; the default logs a warning. */
  handle_connect(): HookResult {
    this.log_info("unhandled connect event", "warning");
  }

  /**
   * Called on a listener when a connection is waiting: the default takes it
   * with `accept()` and passes it to `handle_accepted()`.
   *
   * @returns What `handle_accepted()` returned.
   */
  handle_accept(): HookResult {
    const pair = this.accept();
    if (pair !== null) return this.handle_accepted(pair[0], pair[1]);
  }

  /**
   * Called with each accepted connection; wrap it (`new Handler(sock)`). The
   * default closes it and logs a warning. `sock` is a
   * {@linkcode SocketObject}; overrides that declare it a `Deno.Conn` still
   * type-check, since it is one.
   *
   * @param sock The accepted connection.
   * @param _addr The peer's address.
   */
  handle_accepted(sock: SocketObject | Deno.Conn, _addr: Address): HookResult {
    sock.close();
    this.log_info("unhandled accepted event", "warning");
  }

  /**
   * Called when {@linkcode Dispatcher.timeout} seconds pass without
   * activity; the default logs a warning and calls `handle_close()`.
   *
   * @returns What `handle_close()` returned.
   */
  handle_timeout(): HookResult {
    this.log_info("unhandled timeout event", "warning");
    return this.handle_close();
  }

  /** Called when the connection ends; the default logs a warning and closes. */
  handle_close(): HookResult {
    this.log_info("unhandled close event", "warning");
    this.close();
  }

  /**
   * Python's repr: `<Class connected 127.0.0.1:8080 at 0x1>`.
   *
   * @returns The description.
   */
  toString(): string {
    const status = [this.constructor.name];
    if (this.accepting && this.addr) status.push("listening");
    else if (this.connected) status.push("connected");
    // A bound socket shows its real address (the port 0 asked for is not).
    const raw = this.#socket?.raw ?? null;
    const addr = isListener(raw) ? fromDenoAddr(raw.addr) : this.addr;
    if (addr !== null) {
      status.push(
        typeof addr === "string" ? `'${addr}'` : `${addr[0]}:${addr[1]}`,
      );
    }
    return `<${status.join(" ")} at 0x${this.#id.toString(16)}>`;
  }

  /** @ignore Deno's inspect shows the repr. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

Dispatcher.prototype.ignore_log_types = new Set(["warning"]);

/**
 * Python's `asyncore.dispatcher_with_send`: `send()` buffers whatever the
 * connection cannot take yet in {@linkcode DispatcherWithSend.out_buffer} and
 * `handle_write()` drains it.
 *
 * @example An echo handler
 * ```ts
 * import { DispatcherWithSend } from "@asyncore/asyncore";
 *
 * class EchoHandler extends DispatcherWithSend {
 *   override handle_read(): void {
 *     const data = this.recv(8192);
 *     if (data.length > 0) this.send(data);
 *   }
 * }
 * ```
 */
export class DispatcherWithSend extends Dispatcher {
  // What the channel's outbox refused, in order: chunks from #head on (an
  // array shift is O(n) in V8). Each send() adds at most one chunk and
  // initiate_send() consumes them in place, so no send copies what is
  // already queued.
  #queue: Uint8Array[] = [];
  #head = 0;
  #queued = 0;
  // Bytes at the front of the queue sent before a start_tls() call and not
  // yet handed to the connection: the upgrade's fence waits for them (0:
  // nothing waits). Never more than #queued, so a send() that finds the
  // queue empty cannot pass them.
  #aheadOfTls = 0;

  /**
   * Bytes accepted by `send()` that the connection has not taken yet, as one
   * array (Python's `out_buffer`). Reading it joins the queued chunks, which
   * costs O(n) once after a run of sends; use
   * {@linkcode Dispatcher.bufferedAmount} to just count them. Assigning it
   * replaces everything queued (the array is kept, not copied); while a
   * {@linkcode DispatcherWithSend.start_tls} waits for the bytes queued
   * before it, assigning it drops them too and lets the upgrade go ahead at
   * once: the assigned bytes go out encrypted.
   *
   * @returns The pending bytes.
   */
  get out_buffer(): Uint8Array {
    const queue = this.#queue;
    if (this.#head === queue.length) return EMPTY;
    if (queue.length - this.#head > 1) {
      this.#queue = [concatAll(queue.slice(this.#head))];
      this.#head = 0;
    }
    return this.#queue[this.#head]!;
  }

  set out_buffer(data: Uint8Array) {
    checkBytes(data, "set out_buffer");
    this.#queue = data.length > 0 ? [data] : [];
    this.#head = 0;
    this.#queued = data.length;
    if (this.#aheadOfTls > 0) {
      // Nothing queued is left to send before the upgrade.
      this.#aheadOfTls = 0;
      this[kChannel]?.fenceUpgrade();
    }
  }

  /**
   * Bytes sent and not yet written: those queued here plus the connection's
   * outbox.
   *
   * @returns The byte count.
   */
  override get bufferedAmount(): number {
    return super.bufferedAmount + this.#queued;
  }

  /** Hands queued bytes to the connection until it takes no more. */
  initiate_send(): void {
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const chunk = queue[this.#head]!;
      // Bytes queued before start_tls() go out alone, so that no byte after
      // them passes the upgrade's fence (the out_buffer getter may have
      // joined both into one chunk).
      const ahead = this.#aheadOfTls;
      const part = ahead > 0 && ahead < chunk.length
        ? chunk.subarray(0, ahead)
        : chunk;
      const sent = super.send(part);
      // handle_close() (called by a failed send) may have replaced the queue.
      if (this.#queue !== queue) return;
      this.#queued -= sent;
      if (ahead > 0 && (this.#aheadOfTls -= sent) === 0) {
        this[kChannel]?.fenceUpgrade();
      }
      if (sent < chunk.length) {
        queue[this.#head] = chunk.subarray(sent);
        // The connection took all of `part`: the rest goes after the fence.
        if (sent === part.length) continue;
        if (this.#head >= 1024 && this.#head * 2 >= queue.length) {
          queue.splice(0, this.#head);
          this.#head = 0;
        }
        return;
      }
      queue[this.#head++] = EMPTY;
    }
    queue.length = 0;
    this.#head = 0;
  }

  /** Drains {@linkcode out_buffer}. */
  override handle_write(): HookResult {
    this.initiate_send();
  }

  /**
   * Writable while connecting or while bytes are buffered.
   *
   * @returns Whether there is something to do on a write event.
   */
  override writable(): boolean {
    return !this.connected || this.#queued > 0;
  }

  /**
   * Buffers `data` and starts sending it; never refuses bytes. Each call
   * costs O(`data.length`), however much is queued: bound what a slow peer
   * can make you queue with {@linkcode Dispatcher.bufferedAmount}.
   *
   * @param data The bytes to send.
   * @returns `data.length`: every byte is taken; 0 after `close()`, when
   * `handle_close()` is called instead.
   * @throws {TypeError} If `data` is not a `Uint8Array`.
   */
  override send(data: Uint8Array): number {
    checkBytes(data, "send");
    if (this.debug) this.log_info(`sending ${data.length} bytes`);
    let rest = data;
    if (this.#queued === 0) {
      // Nothing queued: straight to the connection, no copy here.
      const sent = super.send(data);
      rest = sent < data.length ? data.subarray(sent) : EMPTY;
    }
    // Closed (send() called handle_close()): nothing would ever drain it.
    if (this[kChannel]?.closed) return 0;
    if (rest.length > 0) {
      // The caller may reuse its array: keep a copy of what is left over
      // (small ones carved from a shared slab, not an allocation each).
      this.#queue.push(copyBytes(rest));
      this.#queued += rest.length;
    }
    return data.length;
  }

  /**
   * Upgrades the connection to TLS in place, as
   * {@linkcode Dispatcher.start_tls} does. Bytes sent before the call go out
   * in the clear even while they wait in
   * {@linkcode DispatcherWithSend.out_buffer} (sent before the connection was
   * up, or while the connection's outbox was full), and the handshake starts
   * once they are written; bytes sent after it go out encrypted.
   *
   * @param options The client's or the server's TLS settings.
   * @returns A promise that resolves once the handshake is done, and
   * rejects with its failure.
   * @throws {TypeError} If a `cert` or `key` is not a string, or the
   * connection is a Unix socket.
   * @throws {Error} If there is no connection, or it is TLS already
   * ("Cannot start TLS: the connection is already TLS").
   */
  override start_tls(
    options?: TlsOptions | TlsServerOptions,
  ): Promise<void> {
    const ahead = this.#queued;
    const upgraded = super.start_tls(options);
    // A second call while this one waits is refused (an upgrade is under
    // way): the count stays the first one's.
    if (this.#aheadOfTls === 0) this.#aheadOfTls = ahead;
    return upgraded;
  }

  /**
   * @ignore Whether out_buffer holds bytes that must go out before a
   * STARTTLS fence; internal.
   */
  override [kSendsAhead](): boolean {
    return this.#queued > 0;
  }

  /** Closes the channel, as {@linkcode Dispatcher.close} does. */
  override close(): void {
    super.close();
    // The upgrade, if one waited, is cancelled with the channel.
    this.#aheadOfTls = 0;
  }
}

/**
 * Python's `asyncore.file_dispatcher`: the dispatcher hooks over a file, a
 * pipe or standard input instead of a socket. Closing it closes the file
 * (Deno cannot duplicate a descriptor the way Python's wrapper does).
 *
 * @example Echo standard input to standard output
 * ```ts ignore
 * import { FileDispatcher, loop } from "@asyncore/asyncore";
 *
 * class Echo extends FileDispatcher {
 *   override writable(): boolean {
 *     return false;
 *   }
 *   override handle_read(): void {
 *     Deno.stdout.writeSync(this.recv(4096));
 *   }
 *   override handle_close(): void {
 *     this.close();
 *   }
 * }
 * new Echo(Deno.stdin);
 * await loop();
 * ```
 */
export class FileDispatcher extends Dispatcher {
  /**
   * Wraps `file` and joins `map`; the channel counts as connected.
   *
   * @param file A `Deno.FsFile`, `Deno.stdin`, a stream, a
   * `{ readable, writable }` pair (a child process's pipes), or a
   * {@linkcode FileWrapper}.
   * @param map The socket map to join.
   */
  constructor(file: FileSource | FileWrapper, map?: SocketMap | null) {
    super(null, map);
    this.connected = true;
    this.set_file(file, map);
  }

  /**
   * Wraps `file` in a {@linkcode FileWrapper} and joins the map.
   *
   * @param file The file or pipe to wrap.
   * @param map The map to join.
   */
  set_file(file: FileSource | FileWrapper, map?: SocketMap | null): void {
    const wrapper = file instanceof FileWrapper ? file : new FileWrapper(file);
    this.set_socket(wrapper, map);
  }
}
