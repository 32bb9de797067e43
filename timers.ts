/**
 * Timers on the loop, which Python's `asyncore` never had (bpo-1641):
 * {@linkcode call_later} and {@linkcode call_every} schedule a callback on a
 * socket map, as pyftpdlib's `IOLoop.call_later()` and Twisted's
 * `callLater()` do, and return a {@linkcode TimerHandle} that cancels or
 * reschedules it. A dispatcher's own {@linkcode Dispatcher.call_later} and
 * {@linkcode Dispatcher.timeout} build on them.
 *
 * Timers run inside {@linkcode loop} passes, in deadline order (equal
 * deadlines in the order they were scheduled); a pass waits no longer than
 * the next deadline, and pending timers keep `loop()` running, as in
 * pyftpdlib. An idle loop with only timers sleeps on one `setTimeout`.
 * {@linkcode close_all} cancels them.
 *
 * @example Tick until cancelled
 * ```ts
 * import { call_every, call_later, loop } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * let ticks = 0;
 * const tick = call_every(0.01, () => {
 *   ticks++;
 * });
 * call_later(0.035, () => tick.cancel());
 * await loop(); // returns once no channel and no timer is left
 * assert.ok(ticks >= 1);
 * assert.equal(tick.cancelled, true);
 * ```
 *
 * @module
 */

import {
  schedule,
  type TimerCallback,
  TimerHandle,
  type TimerResult,
} from "./_timers.ts";
import { socket_map, type SocketMap } from "./loop.ts";

export { type TimerCallback, TimerHandle, type TimerResult };

/** Options of {@linkcode call_later} and {@linkcode call_every}. */
export interface TimerOptions {
  /**
   * The socket map whose loop runs the call.
   *
   * @default {socket_map}
   */
  map?: SocketMap;
}

function mapOf(options: unknown, action: string): SocketMap {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot ${action}: options must be an object`);
  }
  const { map = socket_map } = options as TimerOptions;
  if (!(map instanceof Map)) {
    throw new TypeError(`Cannot ${action}: map must be a Map of dispatchers`);
  }
  return map;
}

/**
 * Calls `fn` once, `seconds` from now, inside a pass of the loop serving
 * `map`. Pass arguments with a closure: pyftpdlib's
 * `call_later(5, target, *args)` becomes `call_later(5, () => target(...args))`.
 *
 * An error `fn` throws (or its promise rejects with) ends {@linkcode loop},
 * which rejects with it, since no dispatcher owns the call: schedule through
 * {@linkcode Dispatcher.call_later} to route errors to that dispatcher's
 * `handle_error()` instead. Any thrown value counts, `undefined` too. The
 * promise of an async `fn` keeps `loop()` running until it settles, as a
 * pending call does, so its rejection is seen even when nothing else is
 * left on the map.
 *
 * @example Close everything after a while
 * ```ts
 * import { call_later, close_all, Dispatcher, loop } from "@asyncore/asyncore";
 *
 * const server = new Dispatcher();
 * server.create_socket();
 * server.bind(["127.0.0.1", 0]);
 * server.listen(5);
 * call_later(0.02, () => close_all());
 * await loop({ timeout: 30 }); // ends after about 20 ms, not 30 s
 * ```
 *
 * @param seconds Delay; `0` runs it on the next pass.
 * @param fn The callback.
 * @param options The socket map to schedule on.
 * @returns A handle to cancel or reset the call.
 * @throws {TypeError} If `seconds` is not a number, `fn` not a function, or
 * `map` not a `Map`.
 * @throws {RangeError} If `seconds` is negative or not finite.
 */
export function call_later(
  seconds: number,
  fn: TimerCallback,
  options: TimerOptions = {},
): TimerHandle {
  return schedule(mapOf(options, "call later"), seconds, false, fn, null);
}

/**
 * Calls `fn` every `seconds` inside passes of the loop serving `map`, until
 * cancelled. Runs keep a fixed rate; after a stall the next call is one
 * period later, not a burst of the missed ones. Errors end {@linkcode loop}
 * as for {@linkcode call_later}; the call stays scheduled.
 *
 * @example Count ticks on a private map
 * ```ts
 * import { call_every, loop, type SocketMap } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * const map: SocketMap = new Map();
 * let ticks = 0;
 * const tick = call_every(0.005, () => {
 *   if (++ticks === 3) tick.cancel();
 * }, { map });
 * await loop({ map });
 * assert.equal(ticks, 3);
 * ```
 *
 * @param seconds The period, greater than 0.
 * @param fn The callback.
 * @param options The socket map to schedule on.
 * @returns A handle to cancel the calls or change their period.
 * @throws {TypeError} If `seconds` is not a number, `fn` not a function, or
 * `map` not a `Map`.
 * @throws {RangeError} If `seconds` is not positive and finite.
 */
export function call_every(
  seconds: number,
  fn: TimerCallback,
  options: TimerOptions = {},
): TimerHandle {
  return schedule(mapOf(options, "call every"), seconds, true, fn, null);
}
