// A channel's outbox, which plays the kernel's send buffer: `send()` copies
// bytes in (up to OUTBOX_MARK, then it "would block"), and one write at a
// time takes them out to the stream. Small sends are joined into pooled
// chunks, so that a run of them becomes one write.

import { closeQuietly, ignore } from "./_quiet.ts";
import { CHUNK_SIZE, copyBytes, returnChunk, takeChunk } from "./_slab.ts";
import { isTlsConn, type Stream } from "./_stream.ts";
import type { Queued, Waker } from "./_waker.ts";

/** Bytes `send()` accepts before it reports "would block" (returns 0). */
export const OUTBOX_MARK = 256 * 1024;
/**
 * A read or send larger than this goes into a pooled chunk (leaving at most
 * half of it unused) rather than a copy of its own, up to `CHUNK_SIZE`: a
 * larger send is copied whole.
 */
export const POOLED = CHUNK_SIZE / 2;
/** Passes that output may be held while the input behind it is consumed. */
const MAX_HELD_PASSES = 16;

// Writes deferred to the end of the loop's dispatch of several channels (see
// deferWrites()), and whether a dispatch defers them now.
let deferring = false;
const deferred: Outbox[] = [];

/**
 * Defers the writes that hooks start from now on until
 * {@linkcode startDeferredWrites}: the loop dispatches several ready
 * channels, and their replies then leave back to back. Written one per hook,
 * a hook's work apart, each reached a peer that had gone back to sleep
 * meanwhile, and the server's sendto() paid to wake it again (measured in
 * docs/benchmarks.md, "The peer's wake-ups"). Returns false, deferring
 * nothing more, while an outer dispatch defers already (a hook that polls
 * another map).
 */
export function deferWrites(): boolean {
  if (deferring) return false;
  deferring = true;
  return true;
}

/** Starts the writes deferred since {@linkcode deferWrites}, in order. */
export function startDeferredWrites(): void {
  deferring = false;
  // Starting a write defers nothing (deferring is off), so the list is
  // stable while it is walked.
  for (let i = 0; i < deferred.length; i++) deferred[i]!.startDeferred();
  deferred.length = 0;
}

/** The channel as its outbox sees it. */
export interface Sending extends Queued {
  /** Where the bytes go; `null` once released. */
  stream: Stream | null;
  closed: boolean;
  waker: Waker | null;
  timeoutMs: number;
  activeAt: number;
  /** A write failed while the channel was open: the outbox is emptied. */
  writeFailed(error: unknown): void;
}

/** Who waits at a fence: see {@linkcode Outbox.fence}. */
export interface FenceWaiter {
  /** The bytes before the fence are written; writing waits for `unfence()`. */
  fenceReached(): void;
}

/** The bytes sent and not yet written, and the write pump. */
export class Outbox {
  /** Bytes accepted by `send()` and not yet written. */
  bytes = 0;
  /** Set while a write is in flight, or a fence holds the writes back. */
  writing = false;
  /** Set once `shutWrite()` was called. */
  shut = false;
  readonly #channel: Sending;
  #chunks: Uint8Array[] = [];
  /** The buffer behind the last chunk, while it has room to grow. */
  #tail: Uint8Array | null = null;
  /** While bytes are held: the inbox flush() last saw, and passes seen. */
  #heldIn: Uint8Array | null = null;
  #heldPasses = 0;
  /** Set while a TLS connection's sends wait for the end of the turn. */
  #batching = false;
  /** The stream last found not to be a TLS connection. */
  #plain: Stream | null = null;
  /** Chunks still to write before the fence (-1: no fence), and who waits. */
  #fence = -1;
  #waiter: FenceWaiter | null = null;
  #linger: ReturnType<typeof setTimeout> | undefined = undefined;
  #closedAt = 0;

  constructor(channel: Sending) {
    this.#channel = channel;
  }

  /**
   * Copies up to the free room from `data`; returns the count. `holding`:
   * input waits to be read, whose handler will likely send again.
   */
  send(data: Uint8Array, holding: boolean): number {
    const room = OUTBOX_MARK - this.bytes;
    const n = data.length < room ? data.length : room;
    if (n <= 0) return 0;
    const bytes = n === data.length ? data : data.subarray(0, n);
    this.bytes += n;
    // Behind a write in flight, or held while more input waits for the next
    // pass: one large write then replaces many small ones, and flush() ends
    // the hold.
    const queue = this.writing || (holding && this.bytes < CHUNK_SIZE) ||
      this.#batch();
    if (queue || this.#chunks.length > 0 || n > POOLED) this.#append(bytes);
    else this.#chunks.push(copyBytes(bytes));
    if (!queue) this.#start();
    return n;
  }

  // A TLS connection keeps Nagle's algorithm on (Deno.TlsConn has no
  // setNoDelay()), so a second small write would wait for the peer's delayed
  // ACK (~40 ms): the sends of one turn are queued and written together.
  #batch(): boolean {
    const stream = this.#channel.stream!;
    // Asked on every send: a plain stream is recognised once.
    if (stream === this.#plain) return false;
    if (!isTlsConn(stream)) {
      this.#plain = stream;
      return false;
    }
    if (!this.#batching) this.#startBatch();
    return true;
  }

  #startBatch(): void {
    this.#batching = true;
    queueMicrotask(() => this.#endBatch());
  }

  #endBatch(): void {
    this.#batching = false;
    if (
      !this.writing && this.#chunks.length > 0 && this.#channel.stream !== null
    ) {
      this.#start();
    }
  }

  // Copies queued bytes into the last chunk's spare room, or a new chunk with
  // room for more, so a run of sends becomes one write op, not one per send.
  // The chunk being written (the first, while writing) is never touched.
  #append(bytes: Uint8Array): void {
    const chunks = this.#chunks;
    const last = chunks.length - 1;
    const tail = this.#tail;
    if (tail !== null && last >= (this.writing ? 1 : 0)) {
      const used = chunks[last]!.length;
      if (used + bytes.length <= tail.length) {
        tail.set(bytes, used);
        chunks[last] = tail.subarray(0, used + bytes.length);
        return;
      }
    }
    if (bytes.length > CHUNK_SIZE) {
      this.#tail = null;
      chunks.push(bytes.slice());
      return;
    }
    const room = takeChunk();
    room.set(bytes);
    this.#tail = room;
    chunks.push(room.subarray(0, bytes.length));
  }

  /**
   * Writes held bytes once `input` (the unread input that held them) is
   * consumed, when a pass consumed none of it (a handler that stopped
   * reading must not stall its own output), or after a few passes (one
   * reading in tiny slices must not delay its replies).
   */
  flush(input: Uint8Array | null, wantRead: boolean): void {
    // Bytes queued with no write in flight are held ones.
    if (this.writing || this.#chunks.length === 0) return;
    if (
      input === null || input === this.#heldIn || !wantRead ||
      ++this.#heldPasses >= MAX_HELD_PASSES
    ) {
      this.#start();
    } else {
      this.#heldIn = input;
    }
  }

  /** Writes held bytes now. */
  flushNow(): void {
    if (!this.writing && this.#chunks.length > 0) this.#start();
  }

  /** Sends EOF to the peer once the bytes already queued are written. */
  shutWrite(): void {
    this.shut = true;
    if (this.writing) return;
    if (this.#chunks.length > 0) this.#start();
    else this.#closeWrite();
  }

  #closeWrite(): void {
    const conn = this.#channel.stream as Partial<Deno.Conn> | null;
    // A peer already gone makes this reject; the next read reports it.
    conn?.closeWrite?.().catch(ignore);
  }

  /**
   * Puts a fence after the bytes queued so far: they are written first,
   * then `waiter.fenceReached()` is called while writes stay held, until
   * {@linkcode Outbox.unfence}. Bytes sent meanwhile wait behind it.
   */
  fence(waiter: FenceWaiter): void {
    // Bytes sent from now on start a chunk of their own.
    this.#tail = null;
    this.#waiter = waiter;
    this.#fence = this.#chunks.length;
    if (this.#fence === 0) {
      this.writing = true;
      waiter.fenceReached();
    } else if (!this.writing) {
      this.#start();
    }
  }

  /** Ends the hold at the fence; {@linkcode Outbox.resume} writes again. */
  unfence(): void {
    this.#fence = -1;
    this.#waiter = null;
    this.writing = false;
  }

  /** Writes what waited behind the fence, or sends a held-back EOF. */
  resume(): void {
    if (this.#chunks.length > 0) this.#start();
    else if (this.shut) this.#closeWrite();
  }

  /** Drops the bytes sent after the fence: they must not go out. */
  dropFenced(): void {
    if (this.#fence < 0) return;
    for (const chunk of this.#chunks.splice(this.#fence)) {
      this.bytes -= chunk.length;
    }
    this.#tail = null;
    this.#fence = -1;
    this.#waiter = null;
  }

  /**
   * Closes the stream once the bytes queued are written (at once when there
   * are none): sent bytes are never lost while the peer reads. With a
   * timeout, a peer that takes nothing for that long is let go of.
   */
  close(): void {
    const channel = this.#channel;
    if (!this.writing) {
      if (this.#chunks.length === 0 || channel.stream === null) {
        return this.release();
      }
      this.#start();
    }
    if (channel.timeoutMs > 0) {
      this.#closedAt = performance.now();
      this.#linger = setTimeout(() => this.#onLinger(), channel.timeoutMs);
    }
  }

  // A closed channel still flushing: released once the peer has taken
  // nothing for timeoutMs (a write that never completes would hold the
  // connection forever).
  #onLinger(): void {
    const channel = this.#channel;
    const last = Math.max(channel.activeAt, this.#closedAt);
    const left = last + channel.timeoutMs - performance.now();
    if (left > 0) this.#linger = setTimeout(() => this.#onLinger(), left);
    else this.release();
  }

  /** Drops what is queued and closes the channel's stream. */
  release(): void {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    const channel = this.#channel;
    const stream = channel.stream;
    channel.stream = null;
    this.#chunks = [];
    this.#tail = null;
    this.bytes = 0;
    if (stream !== null) closeQuietly(stream);
  }

  #start(): void {
    this.writing = true;
    this.#heldIn = null;
    this.#heldPasses = 0;
    // Deferred, it counts as a write in flight: sends append behind it.
    if (deferring) deferred.push(this);
    else this.#write();
  }

  #write(): void {
    try {
      this.#channel.stream!.write(this.#chunks[0]!).then(
        this.#onWritten,
        this.#onWriteError,
      );
    } catch (error) {
      // A stream whose write() throws instead of rejecting (Deno's own
      // reject): the channel fails as on a rejection, from whichever caller
      // (a send(), a completed write, the end of a dispatch), and the outbox
      // is not left waiting for a write that never started.
      this.#onWriteError(error);
    }
  }

  /** Starts the write that {@linkcode deferWrites} deferred. */
  startDeferred(): void {
    // The channel may have been released, or its queue dropped, meanwhile.
    if (this.#channel.stream !== null && this.#chunks.length > 0) {
      this.#write();
    } else {
      this.#drained();
    }
  }

  #onWritten = (n: number): void => {
    const channel = this.#channel;
    if (channel.timeoutMs > 0) channel.activeAt = performance.now();
    const wasFull = this.bytes >= OUTBOX_MARK;
    this.bytes -= n;
    const chunks = this.#chunks;
    const head = chunks[0]!;
    if (n >= head.length) {
      chunks.shift();
      if (head.buffer === this.#tail?.buffer) this.#tail = null;
      returnChunk(head);
      if (this.#fence > 0) this.#fence--;
    } else {
      chunks[0] = head.subarray(n);
    }
    if (wasFull && !channel.closed && this.bytes < OUTBOX_MARK) {
      channel.waker?.push(channel);
    }
    // The bytes before the fence are out: writing stays held for the waiter.
    if (this.#fence === 0 && !channel.closed) {
      this.#waiter!.fenceReached();
      return;
    }
    if (chunks.length > 0) {
      this.#start();
      return;
    }
    this.#drained();
  };

  // Nothing is left to write: a closed channel is released, a shut one
  // sends its EOF.
  #drained(): void {
    this.writing = false;
    this.#tail = null;
    if (this.#channel.closed) this.release();
    else if (this.shut) this.#closeWrite();
  }

  #onWriteError = (error: unknown): void => {
    this.writing = false;
    this.#chunks = [];
    this.#tail = null;
    this.bytes = 0;
    this.#fence = -1;
    this.#waiter = null;
    if (this.#channel.closed) this.release();
    else this.#channel.writeFailed(error);
  };
}
