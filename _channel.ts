// The I/O engine under each Dispatcher: it turns Deno's completion-based
// reads, writes, accepts and connects into the readiness that asyncore's
// model expects. An inbox plays the kernel's receive buffer, an outbox its
// send buffer; settled operations push the channel onto its map's ready queue.

import { EMPTY } from "./_bytes.ts";
import {
  formatAddress,
  handshakeError,
  messageAbout,
  withMessage,
} from "./_errors.ts";
import { closeQuietly, ignore } from "./_quiet.ts";
import type { Queued, Waker } from "./_waker.ts";
import {
  carve,
  CHUNK_SIZE,
  copyBytes,
  returnChunk,
  takeChunk,
} from "./_slab.ts";

/** What a channel reads from and writes to: a `Deno.Conn`, a file, a pipe. */
export interface Stream {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Bytes `send()` accepts before it reports "would block" (returns 0). */
export const OUTBOX_MARK = 256 * 1024;
// Read buffers start small (idle channels stay cheap), grow x4 whenever a read
// fills them and shrink back after a run of reads that use a quarter or less.
const MIN_READ = 128;
const MAX_READ = CHUNK_SIZE;
// A read or send larger than this uses a pooled chunk (and leaves at most
// half of it unused) rather than a copy of its own.
const POOLED = CHUNK_SIZE / 2;
/** Reads of a quarter of the buffer or less in a row before it shrinks. */
const SHRINK_AFTER = 8;
/**
 * Connections a listener accepts ahead of `accept()`, and the most
 * `handle_accept()` calls one pass makes while they wait.
 */
export const ACCEPT_AHEAD = 16;
/** Passes that output may be held while the input behind it is consumed. */
const MAX_HELD_PASSES = 16;

/** The key under which a Dispatcher keeps its Channel (see loop.ts). */
export const kChannel: unique symbol = Symbol("asyncore.channel");

let lastFileno = 2;

/** A fresh descriptor number; never reused within a process (gh-75114). */
export function nextFileno(): number {
  return ++lastFileno;
}

/**
/**
 * Accept errors that mean "out of descriptors or buffers for now" (EMFILE,
 * ENFILE, ENOBUFS, ENOMEM): the listener is fine and accepts again once
 * something is freed. Deno reports them as plain `Error`s with a `code`.
 */
export function isAcceptStall(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "EMFILE" || code === "ENFILE" || code === "ENOBUFS" ||
    code === "ENOMEM";
}

// After a stalled accept, the listener rests before it tries again (the
// connection that could not be taken stays in the kernel's queue, so an
// immediate retry would fail at once, again and again): 100 ms, doubling
// while the stall lasts, up to 1 s.
const STALL_MIN_MS = 100;
const STALL_MAX_MS = 1000;

/**
 * Python's `_DISCONNECTED` set: errors that mean "the peer is gone", plus a
 * TLS peer that left without `close_notify` (most clients do).
 */
export function isDisconnect(error: unknown): boolean {
  try {
    return error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.UnexpectedEof ||
      error instanceof Deno.errors.BrokenPipe ||
      error instanceof Deno.errors.NotConnected ||
      error instanceof Deno.errors.ConnectionAborted ||
      error instanceof Deno.errors.BadResource;
  } catch {
    // A hook threw a revoked Proxy: not a disconnect, and no new error.
    return false;
  }
}

function isTlsConn(stream: Stream): stream is Deno.TlsConn {
  return typeof (stream as Partial<Deno.TlsConn>).handshake === "function";
}

/** Turns Nagle off on TCP connections (Deno leaves it on). */
export function setNoDelay(conn: unknown, noDelay = true): void {
  const tcp = conn as Partial<Deno.TcpConn>;
  if (typeof tcp.setNoDelay === "function") {
    try {
      tcp.setNoDelay(noDelay);
    } catch {
      // a connection reset before we got here: the first read reports it
    }
  }
}

/** Where a connect goes: TCP host and port, or a Unix socket path. */
export type ConnectTarget =
  | { transport: "tcp"; hostname: string; port: number; tls: TlsTarget | null }
  | { transport: "unix"; path: string };

/** TLS settings for an outgoing connection. */
export interface TlsTarget {
  caCerts?: string[];
  serverName?: string;
}

/**
 * Builds the stream that replaces the raw one in {@linkcode Channel.upgrade}:
 * `first` settles with the raw read that was in flight (its bytes, `null`
 * at EOF), or is `null` when none was.
 */
export type Wrap = (
  raw: Stream,
  first: Promise<Uint8Array | null> | null,
) => Promise<Stream>;

// A stream swap in progress: the chunks of the outbox that go out on the old
// stream before it, and who waits for it.
interface Upgrade {
  wrap: Wrap;
  plainChunks: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** The per-dispatcher I/O state. `O` is the owning dispatcher. */
export class Channel<O = unknown> implements Queued {
  /** Set while the channel sits in its waker's queue. */
  queued = false;
  /** Set while its next read waits for the waker's admission. */
  admitQueued = false;
  /** What the last loop pass learned from `readable()` / `writable()`. */
  wantRead = false;
  wantWrite = false;
  /** The ready queue of the map this channel is registered in. */
  waker: Waker<Channel<O>> | null = null;
  /** The connection or file being read and written, once there is one. */
  stream: Stream | null = null;
  /** The listener being accepted from, once `listen()` was called. */
  listener: Deno.Listener | null = null;
  /** The most recent fatal error (sticky for streams, one-shot for accept). */
  error: unknown = null;
  closed = false;
  /**
   * The owner's inactivity timeout in ms, 0 for none. With one, I/O stamps
   * activeAt, and close() lets go of a peer that takes nothing for that long.
   */
  timeoutMs = 0;
  /** performance.now() of the last completed read, write, accept or connect. */
  activeAt = 0;
  readonly owner: O;
  #in: Uint8Array | null = null;
  #eof = false;
  /** Connections accepted ahead of `accept()` (a listener's backlog). */
  #accepted: Deno.Conn[] | null = null;
  #reading = false;
  /** The waker counting the read, accept or connect in flight, if any. */
  #counted: Waker<Channel<O>> | null = null;
  #buf: Uint8Array = EMPTY;
  #readSize = MIN_READ;
  #smallReads = 0;
  #out: Uint8Array[] = [];
  /** The buffer behind the last chunk of #out, while it has room to grow. */
  #tail: Uint8Array | null = null;
  #outBytes = 0;
  #writing = false;
  /** While bytes are held: the inbox flush() last saw, and passes seen. */
  #heldIn: Uint8Array | null = null;
  #heldPasses = 0;
  #abort: AbortController | null = null;
  #linger: ReturnType<typeof setTimeout> | undefined = undefined;
  #closedAt = 0;
  #noDelay = true;
  /** Where the connect in flight goes, for its error message. */
  #peer = "";
  /** Its host (or path), which Deno's message may quote whole. */
  #host = "";
  #upgrade: Upgrade | null = null;
  /** Set while a TLS connection's sends wait for the end of the turn. */
  #batching = false;
  /** Where the raw read in flight during an upgrade delivers. */
  #handoff: PromiseWithResolvers<Uint8Array | null> | null = null;
  /** While a stalled listener rests: its timer, and the current rest. */
  #stallTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #stallMs = 0;
  #readShut = false;
  #writeShut = false;
  /** Set once the error that ended the transport was handed out. */
  #failed = false;
  /** Set once a TLS stream's handshake is done (or failed). */
  #shaken = false;
  /** Set while an outgoing connection's TLS handshake runs. */
  #handshaking = false;
  /** The TLS connection whose handshake an outgoing connect awaits. */
  #securing: Deno.TlsConn | null = null;

  constructor(owner: O) {
    this.owner = owner;
  }

  /** Starts reading (or accepting) if nothing is held or in flight. */
  armRead(): void {
    if (this.#reading || this.closed || this.error !== null) return;
    const stream = this.stream;
    if (stream !== null) {
      if (this.#in !== null || this.#eof || !this.wantRead) return;
      if (!this.#shaken && isTlsConn(stream)) return this.#handshake(stream);
      if (this.waker !== null && !this.waker.admit(this)) return;
      if (this.#buf.length !== this.#readSize) {
        this.#buf = this.#readSize === CHUNK_SIZE
          ? takeChunk()
          : carve(this.#readSize);
      }
      this.#reading = true;
      this.#count();
      stream.read(this.#buf).then(this.#onRead, this.#onReadError);
    } else if (
      this.listener !== null && this.acceptQueued < ACCEPT_AHEAD &&
      this.#stallTimer === undefined
    ) {
      this.#reading = true;
      this.#count();
      this.#acceptNext(this.listener);
    }
  }

  // The callbacks made here and in the other rare paths stay out of the
  // hot methods: an arrow function in armRead() would cost every call (each
  // channel, each pass) a context object for its `this`.
  #acceptNext(listener: Deno.Listener): void {
    listener.accept().then((conn) => this.#onAccept(conn), this.#onReadError);
  }

  // An accepted TLS connection (a TLS listener's) first completes its
  // handshake: its failure then names the peer, and is told apart from
  // the errors of reads that follow.
  #handshake(conn: Deno.TlsConn): void {
    this.#reading = true;
    this.#count();
    conn.handshake().then(
      () => this.#onHandshake(),
      (error) => this.#onHandshakeError(conn, error),
    );
  }

  #onHandshake(): void {
    this.#uncount();
    this.#reading = false;
    this.#shaken = true;
    if (this.wantRead && !this.closed) this.armRead();
  }

  #onHandshakeError(conn: Deno.TlsConn, error: unknown): void {
    this.#uncount();
    this.#reading = false;
    this.#shaken = true;
    if (this.closed) return;
    const { hostname, port } = conn.remoteAddr;
    this.error = handshakeError(error, formatAddress([hostname, port]));
    this.waker?.push(this);
  }

  #count(): void {
    const waker = this.waker;
    if (waker !== null) waker.inFlight++;
    this.#counted = waker;
  }

  #uncount(): void {
    const waker = this.#counted;
    if (waker !== null) {
      waker.inFlight--;
      this.#counted = null;
    }
  }

  /** True while `recv()`/`accept()` has something to report. */
  readReady(): boolean {
    return this.#in !== null || this.acceptQueued > 0 || this.#eof ||
      (this.error !== null && !this.#failed);
  }

  /** True while `send()` would accept bytes (or report an error). */
  writeReady(): boolean {
    return (this.stream !== null && !this.closed && !this.#writeShut &&
      this.#outBytes < OUTBOX_MARK) || (this.error !== null && !this.#failed);
  }

  /**
   * The error that ended the connection or the connect (a disconnect of a
   * connection that was up excepted: `recv()` reports that as EOF), handed
   * out once: `null` when there is none, it was handed out already, or
   * input that arrived before it is still unread.
   */
  takeFailure(): unknown {
    const error = this.error;
    if (
      error === null || this.#failed || this.listener !== null ||
      this.#in !== null || (this.stream !== null && isDisconnect(error))
    ) return null;
    this.#failed = true;
    return error;
  }

  /** True once {@linkcode takeFailure} handed the failure out. */
  get failed(): boolean {
    return this.#failed;
  }

  /** True once `shutdown()` ended the write side. */
  get writeShut(): boolean {
    return this.#writeShut;
  }

  /**
   * Python's `shutdown()`: ending reads makes the channel report EOF; ending
   * writes sends EOF to the peer once the bytes already queued are written,
   * while reads go on until the peer's own EOF.
   */
  shutdown(read: boolean, write: boolean): void {
    if (read && !this.#readShut) {
      this.#readShut = true;
      this.#in = null;
      this.#eof = true;
      this.waker?.push(this);
    }
    if (write && !this.#writeShut) {
      this.#writeShut = true;
      if (this.#writing) return;
      if (this.#out.length > 0) this.#startWrite();
      else this.#closeWrite();
    }
  }

  #closeWrite(): void {
    const conn = this.stream as Partial<Deno.Conn> | null;
    // A peer already gone makes this reject; the next read reports it.
    conn?.closeWrite?.().catch(ignore);
  }

  /** Bytes accepted by `send()` and not yet written. */
  get outboxBytes(): number {
    return this.#outBytes;
  }

  /**
   * Up to `size` bytes from the inbox, or `null` at EOF or on a disconnect.
   * Throws `WouldBlock` when nothing has arrived, and any other read error.
   */
  recv(size: number): Uint8Array | null {
    const data = this.#in;
    if (data !== null) {
      if (size >= data.length) {
        this.#in = null;
        // Re-arm now, not at the next scan: bulk transfers need it.
        if (this.wantRead) this.armRead();
        return data;
      }
      this.#in = data.subarray(size);
      return data.subarray(0, size);
    }
    if (this.#eof || this.closed || this.#failed) return null;
    const error = this.error;
    if (error !== null) {
      if (isDisconnect(error)) return null;
      throw error;
    }
    throw new Deno.errors.WouldBlock(
      "Cannot recv: no data has arrived yet (call recv() from handle_read())",
    );
  }

  /** Copies up to the outbox's free room from `data`; returns the count. */
  send(data: Uint8Array): number {
    if (this.stream === null) return 0;
    const room = OUTBOX_MARK - this.#outBytes;
    const n = data.length < room ? data.length : room;
    if (n <= 0) return 0;
    const bytes = n === data.length ? data : data.subarray(0, n);
    this.#outBytes += n;
    // Behind a write in flight, or held while more input waits for the next
    // pass (whose handler will likely send again): one large write then
    // replaces many small ones, and flush() ends the hold.
    const queue = this.#writing ||
      (this.#in !== null && this.#outBytes < CHUNK_SIZE) || this.#batch();
    if (queue || this.#out.length > 0 || n > POOLED) this.#append(bytes);
    else this.#out.push(copyBytes(bytes));
    if (!queue) this.#startWrite();
    return n;
  }

  // A TLS connection keeps Nagle's algorithm on (Deno.TlsConn has no
  // setNoDelay()), so a second small write would wait for the peer's delayed
  // ACK (~40 ms): the sends of one turn are queued and written together.
  #batch(): boolean {
    if (!isTlsConn(this.stream!)) return false;
    if (!this.#batching) this.#startBatch();
    return true;
  }

  #startBatch(): void {
    this.#batching = true;
    queueMicrotask(() => this.#endBatch());
  }

  #endBatch(): void {
    this.#batching = false;
    if (!this.#writing && this.#out.length > 0 && this.stream !== null) {
      this.#startWrite();
    }
  }

  // Copies queued bytes into the last chunk's spare room, or a new chunk with
  // room for more, so a run of sends becomes one write op, not one per send.
  // The chunk being written (the first, while #writing) is never touched.
  #append(bytes: Uint8Array): void {
    const out = this.#out;
    const last = out.length - 1;
    const tail = this.#tail;
    if (tail !== null && last >= (this.#writing ? 1 : 0)) {
      const used = out[last]!.length;
      if (used + bytes.length <= tail.length) {
        tail.set(bytes, used);
        out[last] = tail.subarray(0, used + bytes.length);
        return;
      }
    }
    if (bytes.length > CHUNK_SIZE) {
      this.#tail = null;
      out.push(bytes.slice());
      return;
    }
    const room = takeChunk();
    room.set(bytes);
    this.#tail = room;
    out.push(room.subarray(0, bytes.length));
  }

  /**
   * Writes held bytes once the input that held them is consumed, when a pass
   * consumed none of it (a handler that stopped reading must not stall its
   * own output), or after a few passes (one reading in tiny slices must not
   * delay its replies). The loop calls it on every channel each pass.
   */
  flush(): void {
    // Bytes queued with no write in flight are held ones.
    if (this.#writing || this.#out.length === 0) return;
    const input = this.#in;
    if (
      input === null || input === this.#heldIn || !this.wantRead ||
      ++this.#heldPasses >= MAX_HELD_PASSES
    ) {
      this.#startWrite();
    } else {
      this.#heldIn = input;
    }
  }

  /** Writes held bytes now: no more passes will see this channel. */
  flushNow(): void {
    if (!this.#writing && this.#out.length > 0) this.#startWrite();
  }

  /** Connections accepted and not yet taken by `accept()`. */
  get acceptQueued(): number {
    return this.#accepted?.length ?? 0;
  }

  /**
   * Takes the oldest accepted connection, if any; throws a pending accept
   * error once those are taken.
   */
  accept(): Deno.Conn | null {
    const conn = this.#accepted?.shift();
    if (conn !== undefined) {
      if (this.wantRead) this.armRead();
      return conn;
    }
    const error = this.error;
    if (error === null) return null;
    this.error = null;
    if (this.wantRead) this.armRead();
    // The client left before we took it (Python's ECONNABORTED); Deno
    // reports a connection reset in the queue as NotConnected.
    if (
      error instanceof Deno.errors.ConnectionAborted ||
      error instanceof Deno.errors.NotConnected ||
      error instanceof Deno.errors.ConnectionReset
    ) return null;
    throw error;
  }

  /** Starts an outgoing connection; success or failure wakes the loop. */
  connect(target: ConnectTarget, noDelay: boolean): void {
    this.#noDelay = noDelay;
    this.#host = target.transport === "unix" ? target.path : target.hostname;
    this.#peer = target.transport === "unix"
      ? formatAddress(target.path)
      : formatAddress([target.hostname, target.port]);
    let pending: Promise<Deno.Conn>;
    if (target.transport === "unix") {
      pending = Deno.connect({ transport: "unix", path: target.path });
    } else {
      const abort = new AbortController();
      this.#abort = abort;
      pending = Deno.connect({
        hostname: target.hostname,
        port: target.port,
        signal: abort.signal,
      });
      const tls = target.tls;
      // TLS on the connected socket rather than Deno.connectTls: it connects
      // to the address (connectTls would look serverName up instead), and
      // Nagle goes off first, which a Deno.TlsConn cannot do later.
      // The connect completes with the handshake: handle_connect() means
      // TLS is up, and a failed handshake is reported as such.
      if (tls !== null) {
        pending = pending.then(async (conn) => {
          setNoDelay(conn, noDelay);
          this.#handshaking = true;
          const secure = await Deno.startTls(conn as Deno.TcpConn, {
            hostname: tls.serverName ?? target.hostname,
            ...(tls.caCerts ? { caCerts: tls.caCerts } : {}),
          });
          this.#securing = secure;
          try {
            await secure.handshake();
          } catch (error) {
            closeQuietly(secure);
            throw error;
          } finally {
            this.#securing = null;
          }
          return secure;
        });
      }
    }
    this.#count();
    pending.then(
      (conn) => this.#onConnect(conn),
      (error) => this.#onConnectError(error),
    );
  }

  /**
   * Replaces the stream by what `wrap` builds over it (STARTTLS), keeping
   * the order of bytes on the wire: bytes sent before the call go out on the
   * old stream first, bytes sent after it on the new one; the read in flight
   * is handed to `wrap` (it cannot be withdrawn); unread input is dropped, as
   * it arrived before the upgrade. Settles once the new stream is in place.
   */
  upgrade(wrap: Wrap): Promise<void> {
    if (this.stream === null || this.closed || this.error !== null) {
      return Promise.reject(
        this.error ?? new Deno.errors.NotConnected(
          "Cannot start TLS: the channel is not connected",
        ),
      );
    }
    if (this.#upgrade !== null) {
      return Promise.reject(
        new Deno.errors.Busy("Cannot start TLS: an upgrade is under way"),
      );
    }
    this.#in = null;
    // Bytes sent from now on start a chunk of their own.
    this.#tail = null;
    // The read in flight goes to the new stream; until that is in place the
    // read side stays parked (#reading set), so no other read is armed.
    if (this.#reading) {
      this.#handoff = Promise.withResolvers();
      // Its failure is the new stream's to report, if it ever asks.
      this.#handoff.promise.catch(ignore);
    }
    this.#reading = true;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#upgrade = { wrap, plainChunks: this.#out.length, resolve, reject };
    if (this.#out.length === 0) {
      this.#writing = true;
      this.#swap();
    } else if (!this.#writing) {
      this.#startWrite();
    }
    return promise;
  }

  // Runs with #writing set, so nothing is written until the new stream is in.
  async #swap(): Promise<void> {
    const upgrade = this.#upgrade!;
    let stream: Stream;
    try {
      stream = await upgrade.wrap(this.stream!, this.#handoff?.promise ?? null);
    } catch (error) {
      this.#upgrade = null;
      this.#writing = false;
      upgrade.reject(error);
      if (this.closed) {
        this.#release();
      } else {
        this.error ??= error;
        this.waker?.push(this);
      }
      return;
    }
    this.#upgrade = null;
    this.#writing = false;
    this.stream = stream;
    if (this.closed) {
      upgrade.reject(
        new Deno.errors.BadResource("Cannot start TLS: the channel closed"),
      );
      this.#release();
      return;
    }
    upgrade.resolve();
    if (this.#out.length > 0) this.#startWrite();
    else if (this.#writeShut) this.#closeWrite();
    // Unpark, unless the handed-off read has yet to land (#handOff does it).
    if (this.#handoff === null) {
      this.#reading = false;
      if (this.wantRead) this.armRead();
    }
  }

  #handOff(n: number | null, error: unknown): void {
    const handoff = this.#handoff!;
    this.#handoff = null;
    if (error !== null) {
      handoff.reject(error);
    } else {
      handoff.resolve(n === null ? null : copyBytes(this.#buf.subarray(0, n)));
    }
    // Parked until the new stream is in place (#swap unparks).
    if (this.#upgrade !== null) this.#reading = true;
    else if (this.wantRead && !this.closed) this.armRead();
  }

  /**
   * Closes now, or once the outbox is flushed: sent bytes are never lost
   * while the peer reads. With a timeout, a peer that takes nothing for that
   * long is let go of, and what it did not take is dropped.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const upgrade = this.#upgrade;
    if (upgrade !== null) {
      this.#upgrade = null;
      upgrade.reject(
        new Deno.errors.BadResource("Cannot start TLS: the channel closed"),
      );
      // What was sent for the new stream must not go out in the clear.
      for (const chunk of this.#out.splice(upgrade.plainChunks)) {
        this.#outBytes -= chunk.length;
      }
      this.#tail = null;
    }
    this.#abort?.abort();
    this.#abort = null;
    // A handshake in flight holds the connection: closing it settles that.
    if (this.#securing !== null) closeQuietly(this.#securing);
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    this.#in = null;
    this.#buf = EMPTY;
    for (const conn of this.#accepted ?? []) closeQuietly(conn);
    this.#accepted = null;
    if (this.listener !== null) closeQuietly(this.listener);
    this.listener = null;
    if (!this.#writing) {
      if (this.#out.length === 0 || this.stream === null) {
        return this.#release();
      }
      this.#startWrite();
    }
    if (this.timeoutMs > 0) {
      this.#closedAt = performance.now();
      this.#linger = setTimeout(() => this.#onLinger(), this.timeoutMs);
    }
  }

  // A closed channel still flushing: released once the peer has taken
  // nothing for timeoutMs (a write that never completes would hold the
  // connection forever).
  #onLinger(): void {
    const last = Math.max(this.activeAt, this.#closedAt);
    const left = last + this.timeoutMs - performance.now();
    if (left > 0) this.#linger = setTimeout(() => this.#onLinger(), left);
    else this.#release();
  }

  #release(): void {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    const stream = this.stream;
    this.stream = null;
    this.#out = [];
    this.#tail = null;
    this.#outBytes = 0;
    if (stream !== null) closeQuietly(stream);
  }

  #startWrite(): void {
    this.#writing = true;
    this.#heldIn = null;
    this.#heldPasses = 0;
    this.stream!.write(this.#out[0]!).then(this.#onWritten, this.#onWriteError);
  }

  #onRead = (n: number | null): void => {
    this.#uncount();
    this.#reading = false;
    if (this.#handoff !== null) return this.#handOff(n, null);
    if (this.closed || this.#readShut) return;
    if (n === null) {
      this.#eof = true;
    } else if (n === 0) {
      this.armRead();
      return;
    } else {
      if (this.timeoutMs > 0) this.activeAt = performance.now();
      // recv() hands out views that callers may keep. A read that filled
      // most of a pooled chunk hands the chunk itself to the inbox, and the
      // next read takes another from the pool, which the outbox refills as
      // writes complete: an echo copies each byte once, not twice. A smaller
      // read leaves a copy and keeps its buffer, so a short reply never pins
      // a large one.
      const buf = this.#buf;
      if (n > POOLED) {
        this.#in = buf.subarray(0, n);
        this.#buf = EMPTY;
      } else {
        this.#in = copyBytes(buf.subarray(0, n));
      }
      // Grow at once when a read fills the buffer; shrink only after a run of
      // small reads, so sizes near a boundary do not flip-flop (each change
      // costs a new buffer).
      if (n === buf.length) {
        this.#smallReads = 0;
        if (this.#readSize < MAX_READ) {
          this.#readSize = Math.min(this.#readSize * 4, MAX_READ);
        }
      } else if (n * 4 > buf.length) {
        this.#smallReads = 0;
      } else if (
        ++this.#smallReads >= SHRINK_AFTER && this.#readSize > MIN_READ
      ) {
        this.#smallReads = 0;
        this.#readSize /= 4;
      }
    }
    this.waker?.push(this);
  };

  #onReadError = (error: unknown): void => {
    this.#uncount();
    this.#reading = false;
    if (this.#handoff !== null) return this.#handOff(null, error);
    if (this.closed || this.#readShut) return;
    if (this.listener !== null && isAcceptStall(error)) {
      this.#stallMs = Math.min(
        Math.max(this.#stallMs * 2, STALL_MIN_MS),
        STALL_MAX_MS,
      );
      this.#restAfterStall();
    }
    this.error = error;
    this.waker?.push(this);
  };

  #onAccept(conn: Deno.Conn): void {
    this.#uncount();
    this.#reading = false;
    if (this.closed) {
      closeQuietly(conn);
      return;
    }
    setNoDelay(conn);
    if (this.timeoutMs > 0) this.activeAt = performance.now();
    this.#stallMs = 0;
    (this.#accepted ??= []).push(conn);
    this.waker?.push(this);
    // Accept ahead, as the kernel's backlog does, while the owner takes them.
    if (this.wantRead) this.armRead();
  }

  #restAfterStall(): void {
    this.#stallTimer = setTimeout(() => this.#endStall(), this.#stallMs);
  }

  #endStall(): void {
    this.#stallTimer = undefined;
    if (this.wantRead) this.armRead();
  }

  #onConnect(conn: Deno.Conn): void {
    this.#uncount();
    this.#abort = null;
    if (this.closed) {
      closeQuietly(conn);
      return;
    }
    setNoDelay(conn, this.#noDelay);
    if (this.timeoutMs > 0) this.activeAt = performance.now();
    this.stream = conn;
    this.#shaken = true;
    this.waker?.push(this);
  }

  #onConnectError(error: unknown): void {
    this.#uncount();
    this.#abort = null;
    if (this.closed) return;
    this.error = this.#handshaking
      ? handshakeError(error, this.#peer)
      : withMessage(
        error,
        `Cannot connect: ${this.#peer}: ${messageAbout(error, this.#host)}`,
      );
    this.waker?.push(this);
  }

  #onWritten = (n: number): void => {
    if (this.timeoutMs > 0) this.activeAt = performance.now();
    const wasFull = this.#outBytes >= OUTBOX_MARK;
    this.#outBytes -= n;
    const out = this.#out;
    const head = out[0]!;
    if (n >= head.length) {
      out.shift();
      if (head.buffer === this.#tail?.buffer) this.#tail = null;
      returnChunk(head);
      if (this.#upgrade !== null) this.#upgrade.plainChunks--;
    } else {
      out[0] = head.subarray(n);
    }
    if (wasFull && !this.closed && this.#outBytes < OUTBOX_MARK) {
      this.waker?.push(this);
    }
    // The bytes sent before the upgrade are out: swap streams (#swap writes
    // the rest, and #writing stays set until then).
    if (this.#upgrade?.plainChunks === 0 && !this.closed) {
      this.#swap();
      return;
    }
    if (out.length > 0) {
      this.#startWrite();
      return;
    }
    this.#writing = false;
    this.#tail = null;
    if (this.closed) this.#release();
    else if (this.#writeShut) this.#closeWrite();
  };

  #onWriteError = (error: unknown): void => {
    this.#writing = false;
    const wasClosed = this.closed;
    this.#out = [];
    this.#tail = null;
    this.#outBytes = 0;
    if (wasClosed) {
      this.#release();
      return;
    }
    this.#upgrade?.reject(error);
    this.#upgrade = null;
    if (this.error === null) this.error = error;
    this.waker?.push(this);
  };
}
