// What the loop and the dispatcher share, below both: the default socket map,
// the part of a dispatcher the loop drives, and ExitNow.

import type { Channel, kChannel } from "./_channel.ts";

/** What a hook returns: nothing, or a promise of nothing. */
export type HookResult = void | PromiseLike<void>;

/**
 * What the loop needs of a dispatcher: its predicates, its two-layer
 * `handle_*_event` hooks, `handle_error()`/`handle_close()` and `close()`.
 * Every {@linkcode Dispatcher} is one; the loop never needs more.
 */
export interface Pollable {
  /** @ignore The I/O engine the loop drives; internal. */
  readonly [kChannel]: Channel<Pollable> | null;
  /** True while the dispatcher is a listener. */
  readonly accepting: boolean;
  /** The key of the dispatcher in its map, `null` once closed. */
  fileno(): number | null;
  /** Whether the loop should read (or accept) for it. */
  readable(): boolean;
  /** Whether the loop should report it write-ready. */
  writable(): boolean;
  /** Dispatches a read event. */
  handle_read_event(): HookResult;
  /** Dispatches a write event. */
  handle_write_event(): HookResult;
  /** Dispatches an exceptional event. */
  handle_expt_event(): HookResult;
  /** Called when the connection ends. */
  handle_close(): HookResult;
  /** Called with any value a hook threw or rejected with. */
  handle_error(error: unknown): HookResult;
  /** Closes the dispatcher and leaves its maps. */
  close(): void;
}

/**
 * A socket map: dispatchers keyed by their `fileno()`. Its values are typed
 * as the part of a dispatcher the loop drives ({@linkcode Pollable}).
 */
export type SocketMap = Map<number, Pollable>;

/**
 * The default socket map every dispatcher joins unless given another one.
 *
 * @example Count open channels
 * ```ts
 * import { socket_map } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * assert.equal(socket_map.size, 0);
 * ```
 */
export const socket_map: SocketMap = new Map();
/**
 * Thrown from a handler to stop {@linkcode loop} at once: it is the one
 * exception the dispatch helpers re-throw instead of passing to
 * `handle_error()`, so `loop()` rejects with it.
 *
 * @example Stop the loop from a handler
 * ```ts
 * import { ExitNow } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * const error = new ExitNow("done");
 * assert.equal(error.name, "ExitNow");
 * ```
 */
export class ExitNow extends Error {
  /**
   * Creates the exception.
   *
   * @param message Why the loop stops.
   * @param options `cause`, passed on to `Error`.
   */
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ExitNow";
  }
}
