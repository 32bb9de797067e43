// A listener's side of a channel: connections accepted ahead of `accept()`,
// as the kernel's backlog holds them, and the rest the listener takes when
// the process runs out of descriptors.

import { closeQuietly } from "./_quiet.ts";

/**
 * Connections a listener accepts ahead of `accept()`, and the most
 * `handle_accept()` calls one pass makes while they wait.
 */
export const ACCEPT_AHEAD = 16;

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

/** The channel as its accept queue sees it. */
export interface Accepting {
  /** The most recent accept error (one-shot: `accept()` takes it). */
  error: unknown;
  wantRead: boolean;
  /** Starts the next accept, if there is room and no rest. */
  armRead(): void;
}

/** A listening channel's accepted connections and its stall rest. */
export class AcceptQueue {
  /** Connections accepted and not yet taken, oldest first. */
  readonly conns: Deno.Conn[] = [];
  readonly #channel: Accepting;
  /** While the listener rests after a stall: its timer, and the rest. */
  #stallTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #stallMs = 0;

  constructor(channel: Accepting) {
    this.#channel = channel;
  }

  /** True while another connection may be accepted ahead. */
  open(): boolean {
    return this.conns.length < ACCEPT_AHEAD && this.#stallTimer === undefined;
  }

  /** Queues a connection just accepted: the stall, if any, is over. */
  add(conn: Deno.Conn): void {
    this.#stallMs = 0;
    this.conns.push(conn);
  }

  /** An accept failed: after a stall the listener rests, growing the rest. */
  failed(error: unknown): void {
    if (!isAcceptStall(error)) return;
    this.#stallMs = Math.min(
      Math.max(this.#stallMs * 2, STALL_MIN_MS),
      STALL_MAX_MS,
    );
    this.#stallTimer = setTimeout(() => this.#endStall(), this.#stallMs);
  }

  #endStall(): void {
    this.#stallTimer = undefined;
    const channel = this.#channel;
    if (channel.wantRead) channel.armRead();
  }

  /**
   * Takes the oldest accepted connection, if any; throws a pending accept
   * error once those are taken.
   */
  take(): Deno.Conn | null {
    const channel = this.#channel;
    const conn = this.conns.shift();
    if (conn !== undefined) {
      if (channel.wantRead) channel.armRead();
      return conn;
    }
    const error = channel.error;
    if (error === null) return null;
    channel.error = null;
    if (channel.wantRead) channel.armRead();
    // The client left before we took it (Python's ECONNABORTED); Deno
    // reports a connection reset in the queue as NotConnected.
    if (
      error instanceof Deno.errors.ConnectionAborted ||
      error instanceof Deno.errors.NotConnected ||
      error instanceof Deno.errors.ConnectionReset
    ) return null;
    throw error;
  }

  /** Ends the rest and closes the connections no one took. */
  close(): void {
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    for (const conn of this.conns) closeQuietly(conn);
    this.conns.length = 0;
  }
}
