// The one home of error routing: how a hook's throw or rejection reaches its
// dispatcher's handle_error(), and how an error ends loop(). A hook may be
// async: every promise it returns is watched, so no rejection escapes as an
// unhandled one.

import { kChannel } from "./_channel.ts";
import { isInstance } from "./_errors.ts";
import { wakerFor } from "./_waker.ts";
import {
  ExitNow,
  type HookResult,
  type Pollable,
  socket_map,
} from "./_state.ts";

/** True for a promise or any other object with a `then()` method. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value != null &&
    typeof (value as PromiseLike<unknown>).then === "function";
}

/**
 * Calls `event` on `obj` as a hook: its throw goes to `handle_error()`, and
 * so does its rejection ({@linkcode settle}). {@linkcode ExitNow}, and a
 * throw from `handle_error()` itself, are let out (and so end `loop()`), as
 * in Python.
 */
export function route(obj: Pollable, event: () => HookResult): void {
  try {
    settle(obj, event.call(obj));
  } catch (error) {
    if (isInstance(error, ExitNow)) throw error;
    settleError(obj, obj.handle_error(error));
  }
}

/**
 * Watches what a hook returned: a rejection goes to `handle_error()`, as a
 * throw would.
 */
export function settle(obj: Pollable, result: HookResult): void {
  if (isThenable(result)) {
    result.then(undefined, (error: unknown) => fail(obj, error));
  }
}

/**
 * Watches what `handle_error()` returned: a rejection ends `loop()`, as a
 * throw from `handle_error()` does (Python lets that exception out of
 * `loop()`). It never reaches `handle_error()` again, so a failing
 * `handle_error()` cannot recurse.
 */
export function settleError(obj: Pollable, result: HookResult): void {
  if (isThenable(result)) {
    result.then(undefined, (fatal: unknown) => stop(obj, fatal));
  }
}

/**
 * Passes an error raised outside a dispatch (a hook's rejection) to
 * `obj.handle_error()`. {@linkcode ExitNow}, and whatever `handle_error()`
 * throws or rejects with, end `loop()` instead.
 */
export function fail(obj: Pollable, error: unknown): void {
  if (isInstance(error, ExitNow)) return stop(obj, error);
  // A hook that awaited start_tls() rejects with its connection's failure,
  // which handle_error() gets once, and which closes the channel after it.
  const channel = obj[kChannel];
  if (channel !== null && error !== null && error === channel.error) {
    if (channel.takeFailure() === null) return;
    queueMicrotask(() => obj.close());
  }
  try {
    settleError(obj, obj.handle_error(error));
  } catch (fatal) {
    stop(obj, fatal);
  }
}

/**
 * Makes the loop serving `obj`'s map reject with `error` (the first one
 * wins).
 */
export function stop(obj: Pollable, error: unknown): void {
  (obj[kChannel]?.waker ?? wakerFor(socket_map)).stop(error);
}
