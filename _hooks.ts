// How hook results are observed. A hook may be async: every promise it
// returns is watched, so no rejection escapes as an unhandled one.

import { kChannel } from "./_channel.ts";
import { isInstance } from "./_errors.ts";
import { wakerFor } from "./_waker.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { ExitNow, socket_map } from "./loop.ts";

/** What a hook returns: nothing, or a promise of nothing. */
export type HookResult = void | PromiseLike<void>;

function isThenable(value: unknown): value is PromiseLike<void> {
  return value != null &&
    typeof (value as PromiseLike<void>).then === "function";
}

/**
 * Watches what a hook returned: a rejection goes to `handle_error()`, as a
 * throw would.
 */
export function settle(obj: Dispatcher, result: HookResult): void {
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
export function settleError(obj: Dispatcher, result: HookResult): void {
  if (isThenable(result)) {
    result.then(undefined, (fatal: unknown) => stop(obj, fatal));
  }
}

/**
 * Passes an error raised outside a dispatch (a hook's rejection) to
 * `obj.handle_error()`. {@linkcode ExitNow}, and whatever `handle_error()`
 * throws or rejects with, end `loop()` instead.
 */
export function fail(obj: Dispatcher, error: unknown): void {
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

// Makes the loop serving obj's map reject with `error` (the first one wins).
function stop(obj: Dispatcher, error: unknown): void {
  (obj[kChannel]?.waker ?? wakerFor(socket_map)).stop(error);
}
