// The I/O engine under each Dispatcher: it turns Deno's completion-based
// reads, writes, accepts and connects into the readiness that asyncore's
// model expects. An inbox plays the kernel's receive buffer, an outbox
// (_outbox.ts) its send buffer; settled operations push the channel onto its
// map's ready queue. This file keeps the read side and composes the parts:
// accepting (_accept.ts), connecting (_connect.ts) and the STARTTLS swap
// (_upgrade.ts).

import { type Accepting, AcceptQueue } from "./_accept.ts";
import { EMPTY } from "./_bytes.ts";
import { Connect, type ConnectTarget } from "./_connect.ts";
import { formatAddress, handshakeError, isDisconnect } from "./_errors.ts";
import { Outbox, OUTBOX_MARK, POOLED, type Sending } from "./_outbox.ts";
import { closeQuietly } from "./_quiet.ts";
import {
  carve,
  CHUNK_SIZE,
  copyBytes,
  returnChunk,
  takeChunk,
} from "./_slab.ts";
import { isTlsConn, setNoDelay, type Stream } from "./_stream.ts";
import { Upgrade, type Upgrading, type Wrap } from "./_upgrade.ts";
import type { Waker } from "./_waker.ts";

// Read buffers start small (idle channels stay cheap), grow x4 whenever a read
// fills them and shrink back after a run of reads that use a quarter or less.
const MIN_READ = 128;
const MAX_READ = CHUNK_SIZE;
/** Reads of a quarter of the buffer or less in a row before it shrinks. */
const SHRINK_AFTER = 8;

/** {@linkcode Channel.visit}: `recv()`/`accept()` has something to report. */
export const READ_READY = 1;
/** {@linkcode Channel.visit}: `send()` would take bytes (or report an error). */
export const WRITE_READY = 2;

/** The key under which a Dispatcher keeps its Channel (see loop.ts). */
export const kChannel: unique symbol = Symbol("asyncore.channel");

/** The per-dispatcher I/O state. `O` is the owning dispatcher. */
export class Channel<O = unknown> implements Accepting, Sending, Upgrading {
  /** Set while the channel sits in its waker's queue. */
  queued = false;
  /** The number of the pass that last dispatched it (see loop.ts). */
  pass = 0;
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
  /** The inbox: input read and not yet taken by `recv()`. */
  #in: Uint8Array | null = null;
  /**
   * Set while the inbox is a view of the read buffer, which the next read
   * reuses: what `recv()` lends out of it must be a copy or the buffer itself.
   */
  #inBorrowed = false;
  #eof = false;
  #readShut = false;
  /** Set while a read, accept, handshake or upgrade holds the read side. */
  #reading = false;
  /** The waker counting the read, accept or connect in flight, if any. */
  #counted: Waker<Channel<O>> | null = null;
  #buf: Uint8Array = EMPTY;
  #readSize = MIN_READ;
  #smallReads = 0;
  /** Set once the error that ended the transport was handed out. */
  #failed = false;
  /**
   * Set once the stream needs no handshake before its reads: a TLS stream's
   * is done (or failed), or the stream is not a `Deno.TlsConn` at all.
   */
  #shaken = false;
  readonly #outbox: Outbox = new Outbox(this);
  /** A listener's accepted connections, once it accepts. */
  #accept: AcceptQueue | null = null;
  /** The outgoing connection in flight. */
  #connect: Connect | null = null;
  /** The stream swap in progress. */
  #upgrade: Upgrade | null = null;
  /** The upgrade the raw read in flight is to be handed to. */
  #handoff: Upgrade | null = null;
  /** Set while the upgrade's fence waits for {@linkcode fenceUpgrade}. */
  #fenceHeld = false;
  /** Set while the loop runs this channel's read hook: see {@linkcode hooked}. */
  #inHook = false;

  constructor(owner: O) {
    this.owner = owner;
  }

  /**
   * One loop pass's visit: records what `readable()`/`writable()` said,
   * writes held output that is due, arms the read, and returns what is
   * ready ({@linkcode READ_READY} | {@linkcode WRITE_READY}). Kept small, so
   * that the scan inlines it: a pass visits every channel, ready or not.
   */
  visit(wantRead: boolean, wantWrite: boolean): number {
    this.wantRead = wantRead;
    this.wantWrite = wantWrite;
    const outbox = this.#outbox;
    if (!outbox.writing && outbox.bytes > 0) this.flush();
    let ready = 0;
    if (wantRead) {
      // Under load most channels wait for admission: a turn arms them.
      if (!this.#reading && !this.admitQueued) this.armRead();
      if (this.readReady()) ready = READ_READY;
    }
    if (wantWrite && this.writeReady()) ready |= WRITE_READY;
    return ready;
  }

  /** Starts reading (or accepting) if nothing is held or in flight. */
  armRead(): void {
    if (this.#reading || this.closed || this.error !== null) return;
    const stream = this.stream;
    if (stream !== null) {
      if (this.#in !== null || this.#eof || !this.wantRead) return;
      // Checked once per stream, not on every arm.
      if (!this.#shaken) {
        if (isTlsConn(stream)) return this.#handshake(stream);
        this.#shaken = true;
      }
      if (this.waker !== null && !this.waker.admit(this)) return;
      if (this.#buf.length !== this.#readSize) {
        // Nothing else holds the old buffer: lending one gives it up.
        returnChunk(this.#buf);
        this.#buf = this.#readSize === CHUNK_SIZE
          ? takeChunk()
          : carve(this.#readSize);
      }
      this.#reading = true;
      this.#count();
      stream.read(this.#buf).then(this.#onRead, this.#onReadError);
    } else if (this.listener !== null) {
      const accept = this.#accept ??= new AcceptQueue(this);
      if (!accept.open()) return;
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
    return this.#in !== null || this.#eof ||
      (this.#accept !== null && this.#accept.conns.length > 0) ||
      (this.error !== null && !this.#failed);
  }

  /** True while `send()` would accept bytes (or report an error). */
  writeReady(): boolean {
    const outbox = this.#outbox;
    return (this.stream !== null && !this.closed && !outbox.shut &&
      outbox.bytes < OUTBOX_MARK) || (this.error !== null && !this.#failed);
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
    return this.#outbox.shut;
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
      this.#reachEof();
    }
    if (write && !this.#outbox.shut) this.#outbox.shutWrite();
  }

  // EOF, the peer's or our shutdown(SHUT_RD)'s: once the inbox is empty,
  // recv() returns null and readReady() stays true, so handle_read() sees it.
  #reachEof(): void {
    this.#eof = true;
    this.waker?.push(this);
  }

  /** Bytes accepted by `send()` and not yet written. */
  get outboxBytes(): number {
    return this.#outbox.bytes;
  }

  /**
   * Up to `size` bytes from the inbox, or `null` at EOF or on a disconnect.
   * Throws `WouldBlock` when nothing has arrived, and any other read error.
   * The bytes are the caller's to keep.
   */
  recv(size: number): Uint8Array | null {
    let data = this.#in;
    if (data === null) return this.#noInput();
    if (this.#inBorrowed) {
      // The next read reuses the buffer under the inbox. A large inbox keeps
      // that buffer (the next read takes another); a small one is copied
      // once, and its buffer stays for the next read.
      this.#inBorrowed = false;
      if (data.length > POOLED) this.#buf = EMPTY;
      else data = copyBytes(data);
    }
    if (size >= data.length) {
      this.#consumed();
      return data;
    }
    this.#in = data.subarray(size);
    return data.subarray(0, size);
  }

  /**
   * Copies up to `size` bytes from the inbox into `into` and returns the
   * count, or `null` as {@linkcode recv} does. The read buffer then stays
   * the channel's, so a stream read this way costs no allocation per read.
   */
  recvInto(into: Uint8Array, size: number): number | null {
    const data = this.#in;
    if (data === null) return this.#noInput();
    if (size >= data.length) {
      into.set(data);
      this.#consumed();
      return data.length;
    }
    into.set(data.subarray(0, size));
    this.#in = data.subarray(size);
    return size;
  }

  #consumed(): void {
    this.#in = null;
    this.#inBorrowed = false;
    // Re-arm now, not at the next scan: bulk transfers need it. Inside the
    // read hook, once it returns (see hooked()), unless the channel moves a
    // stream (its reads have grown the buffer to the largest): then the next
    // bytes likely wait, and reading them comes first.
    if (this.wantRead && (!this.#inHook || this.#readSize === MAX_READ)) {
      this.armRead();
    }
  }

  /**
   * Runs the owner's read hook `event(owner, arg)`; a read that `recv()` makes room for
   * starts after it returns, unless the channel moves a stream. The
   * reply to a whole message is then written first: with one connection its
   * latency is the whole rate (arming the read first cost ~3 % of the
   * messages per second at one connection, and arming it last ~10 % of a
   * bulk transfer's bytes per second). When the loop dispatches several
   * channels at once, the write itself waits until their hooks have run
   * (deferWrites() in _outbox.ts).
   */
  hooked<A>(event: (owner: O, arg: A) => void, arg: A): void {
    this.#inHook = true;
    try {
      event(this.owner, arg);
    } finally {
      this.#inHook = false;
      // A no-op unless the hook emptied the inbox (armRead() checks).
      if (this.wantRead) this.armRead();
    }
  }

  #noInput(): null {
    if (this.#eof || this.closed || this.#failed) return null;
    const error = this.error;
    if (error !== null) {
      if (isDisconnect(error)) return null;
      throw error;
    }
    throw new Deno.errors.WouldBlock(
      "Cannot receive: no data has arrived yet (receive from handle_read())",
    );
  }

  /**
   * Copies up to the outbox's free room from `data`; returns the count.
   * While unread input waits, the bytes are held for the next pass (whose
   * handler will likely send again): see {@linkcode flush}.
   */
  send(data: Uint8Array): number {
    if (this.stream === null) return 0;
    return this.#outbox.send(data, this.#in !== null);
  }

  /**
   * Writes held bytes once the input that held them is consumed, when a pass
   * consumed none of it, or after a few passes. The loop calls it on every
   * channel each pass.
   */
  flush(): void {
    this.#outbox.flush(this.#in, this.wantRead);
  }

  /** Writes held bytes now: no more passes will see this channel. */
  flushNow(): void {
    this.#outbox.flushNow();
  }

  /** A write failed while the channel was open (called by the outbox). */
  writeFailed(error: unknown): void {
    const upgrade = this.#upgrade;
    if (upgrade !== null) {
      this.#upgrade = null;
      upgrade.fail(error);
    }
    if (this.error === null) this.error = error;
    this.waker?.push(this);
  }

  /** Connections accepted and not yet taken by `accept()`. */
  get acceptQueued(): number {
    return this.#accept?.conns.length ?? 0;
  }

  /**
   * Takes the oldest accepted connection, if any; throws a pending accept
   * error once those are taken.
   */
  accept(): Deno.Conn | null {
    return (this.#accept ??= new AcceptQueue(this)).take();
  }

  /** Starts an outgoing connection; success or failure wakes the loop. */
  connect(target: ConnectTarget, noDelay: boolean): void {
    const connect = new Connect(target, noDelay);
    this.#connect = connect;
    const pending = connect.start(target);
    this.#count();
    pending.then(
      (conn) => this.#onConnect(connect, conn),
      (error) => this.#onConnectError(connect, error),
    );
  }

  /**
   * Replaces the stream by what `wrap` builds over it (STARTTLS), keeping
   * the order of bytes on the wire: bytes sent before the call go out on the
   * old stream first, bytes sent after it on the new one; the read in flight
   * is handed to `wrap` (it cannot be withdrawn); unread input is dropped, as
   * it arrived before the upgrade. Settles once the new stream is in place.
   * `held`: the owner still has bytes of its own queue to send before the
   * fence, and places it with {@linkcode fenceUpgrade} once they are sent.
   */
  upgrade(wrap: Wrap, held = false): Promise<void> {
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
    const upgrade = new Upgrade(this, this.#outbox, wrap, this.#reading);
    if (this.#reading) this.#handoff = upgrade;
    // Until the new stream is in place the read side stays parked (#reading
    // set), so no other read is armed.
    this.#reading = true;
    this.#upgrade = upgrade;
    this.#fenceHeld = held;
    if (!held) upgrade.start();
    return upgrade.promise;
  }

  /**
   * Places the fence of an upgrade begun with `held`: the owner has sent
   * what it queued before the upgrade. Otherwise (no upgrade, or its fence
   * is placed already) it does nothing.
   */
  fenceUpgrade(): void {
    const upgrade = this.#upgrade;
    if (upgrade === null || !this.#fenceHeld) return;
    this.#fenceHeld = false;
    upgrade.start();
  }

  /** The stream swap is over (called by the upgrade). */
  swapEnded(ok: boolean): void {
    this.#upgrade = null;
    // Unpark, unless the handed-off read has yet to land (#handOff does it).
    if (ok && this.#handoff === null) {
      this.#reading = false;
      if (this.wantRead) this.armRead();
    }
  }

  #handOff(n: number | null, error: unknown): void {
    const upgrade = this.#handoff!;
    this.#handoff = null;
    upgrade.handOff(
      n === null ? null : copyBytes(this.#buf.subarray(0, n)),
      error,
    );
    // Parked until the new stream is in place (swapEnded() unparks).
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
      upgrade.cancel();
    }
    this.#connect?.abort();
    this.#in = null;
    this.#buf = EMPTY;
    this.#accept?.close();
    if (this.listener !== null) closeQuietly(this.listener);
    this.listener = null;
    this.#outbox.close();
  }

  #onRead = (n: number | null): void => {
    this.#uncount();
    this.#reading = false;
    if (this.#handoff !== null) return this.#handOff(n, null);
    if (this.closed || this.#readShut) return;
    if (n === null) return this.#reachEof();
    if (n === 0) return this.armRead();
    if (this.timeoutMs > 0) this.activeAt = performance.now();
    // The inbox is a view of the read buffer: no read is armed while it
    // holds bytes, and recv() copies (or takes the buffer) only when it lends
    // them out, so recvInto() copies each byte once and allocates nothing.
    const buf = this.#buf;
    this.#in = buf.subarray(0, n);
    this.#inBorrowed = true;
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
    this.waker?.push(this);
  };

  #onReadError = (error: unknown): void => {
    this.#uncount();
    this.#reading = false;
    if (this.#handoff !== null) return this.#handOff(null, error);
    if (this.closed || this.#readShut) return;
    if (this.listener !== null) this.#accept?.failed(error);
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
    this.#accept!.add(conn);
    this.waker?.push(this);
    // Accept ahead, as the kernel's backlog does, while the owner takes them.
    if (this.wantRead) this.armRead();
  }

  #onConnect(connect: Connect, conn: Deno.Conn): void {
    this.#uncount();
    this.#connect = null;
    if (this.closed) {
      closeQuietly(conn);
      return;
    }
    setNoDelay(conn, connect.noDelay);
    if (this.timeoutMs > 0) this.activeAt = performance.now();
    this.stream = conn;
    this.#shaken = true;
    this.waker?.push(this);
  }

  #onConnectError(connect: Connect, error: unknown): void {
    this.#uncount();
    this.#connect = null;
    if (this.closed) return;
    this.error = connect.failure(error);
    this.waker?.push(this);
  }
}
