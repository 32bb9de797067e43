/**
 * The event loop: Python's `asyncore.loop()`, `poll()`, the `read`/`write`/
 * `readwrite` dispatch helpers, {@linkcode close_all} and
 * {@linkcode socket_map}.
 *
 * Deno has no readiness API, so each pass asks every channel's
 * `readable()`/`writable()`, keeps one read (or accept) in flight for each
 * readable channel, and waits on a single wake-up promise that settled
 * operations resolve. Waiting costs O(1) however many channels are open.
 *
 * @example Run a server for a bounded time
 * ```ts
 * import { close_all, Dispatcher, loop } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * const server = new Dispatcher();
 * server.create_socket();
 * server.bind(["127.0.0.1", 0]);
 * server.listen(5);
 * await loop({ timeout: 0.01, count: 2 });
 * assert.equal(server.accepting, true);
 * close_all();
 * ```
 *
 * @module
 */

import { ACCEPT_AHEAD } from "./_accept.ts";
import { type Channel, kChannel, READ_READY, WRITE_READY } from "./_channel.ts";
import { isDisconnect, isInstance, kindOf, STR_FAILED } from "./_errors.ts";
import { isThenable, route, settle, settleError } from "./_routing.ts";
import {
  ExitNow,
  type Pollable,
  socket_map,
  type SocketMap,
} from "./_state.ts";
import { stackOf } from "./_descriptors.ts";
import { closeKick, kick } from "./_kick.ts";
import { deferWrites, startDeferredWrites } from "./_outbox.ts";
import { type FollowEnd, type Waker, wakerFor } from "./_waker.ts";
import {
  cancelAll,
  hasTimers,
  type TimerCallback,
  type Timers,
  timersFor,
} from "./_timers.ts";

export { ExitNow, type Pollable, socket_map, type SocketMap };

/** Data to read (`select.POLLIN`). */
export const POLLIN = 0x001;
/** Urgent data to read (`select.POLLPRI`). */
export const POLLPRI = 0x002;
/** Writing will not block (`select.POLLOUT`). */
export const POLLOUT = 0x004;
/** Error condition (`select.POLLERR`). */
export const POLLERR = 0x008;
/** Hung up (`select.POLLHUP`). */
export const POLLHUP = 0x010;
/** Invalid request: descriptor not open (`select.POLLNVAL`). */
export const POLLNVAL = 0x020;

/**
 * Calls `obj.handle_read_event()`, passing any error but {@linkcode ExitNow}
 * to `obj.handle_error()`.
 *
 * @example Dispatch a read event by hand
 * ```ts
 * import { Dispatcher, read } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * class Probe extends Dispatcher {
 *   reads = 0;
 *   override handle_read(): void {
 *     this.reads++;
 *   }
 * }
 * const probe = new Probe();
 * probe.connected = true;
 * read(probe);
 * assert.equal(probe.reads, 1);
 * ```
 *
 * @param obj The dispatcher to notify.
 * @throws {ExitNow} If the handler throws it.
 */
export function read(obj: Pollable): void {
  route(obj, obj.handle_read_event);
}

/**
 * Calls `obj.handle_write_event()`, passing any error but {@linkcode ExitNow}
 * to `obj.handle_error()`.
 *
 * @example Dispatch a write event by hand
 * ```ts
 * import { Dispatcher, write } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * class Probe extends Dispatcher {
 *   writes = 0;
 *   override handle_write(): void {
 *     this.writes++;
 *   }
 * }
 * const probe = new Probe();
 * probe.connected = true;
 * write(probe);
 * assert.equal(probe.writes, 1);
 * ```
 *
 * @param obj The dispatcher to notify.
 * @throws {ExitNow} If the handler throws it.
 */
export function write(obj: Pollable): void {
  route(obj, obj.handle_write_event);
}

/**
 * Dispatches poll-style `flags` to `obj`: {@linkcode POLLIN} to
 * `handle_read_event()`, {@linkcode POLLOUT} to `handle_write_event()`,
 * {@linkcode POLLPRI} to `handle_expt_event()`, and {@linkcode POLLHUP},
 * {@linkcode POLLERR} or {@linkcode POLLNVAL} to `handle_close()`. A
 * disconnect error goes to `handle_close()`, any other (but
 * {@linkcode ExitNow}) to `handle_error()`.
 *
 * @example Report a hang-up
 * ```ts
 * import { Dispatcher, POLLHUP, readwrite } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * class Probe extends Dispatcher {
 *   closed = false;
 *   override handle_close(): void {
 *     this.closed = true;
 *   }
 * }
 * const probe = new Probe();
 * readwrite(probe, POLLHUP);
 * assert.ok(probe.closed);
 * ```
 *
 * @param obj The dispatcher to notify.
 * @param flags A bitwise OR of the `POLL*` constants.
 * @throws {ExitNow} If a handler throws it.
 */
export function readwrite(obj: Pollable, flags: number): void {
  try {
    if (flags & POLLIN) settle(obj, obj.handle_read_event());
    if (flags & POLLOUT) settle(obj, obj.handle_write_event());
    if (flags & POLLPRI) settle(obj, obj.handle_expt_event());
    if (flags & (POLLHUP | POLLERR | POLLNVAL)) settle(obj, obj.handle_close());
  } catch (error) {
    if (isInstance(error, ExitNow)) throw error;
    if (isDisconnect(error)) settle(obj, obj.handle_close());
    else settleError(obj, obj.handle_error(error));
  }
}

function checkTimeout(timeout: unknown): number {
  if (timeout === null || timeout === Infinity) return Infinity;
  if (typeof timeout !== "number" || Number.isNaN(timeout)) {
    throw new TypeError(
      `Cannot poll: timeout must be a number of seconds, got ${
        kindOf(timeout)
      }`,
    );
  }
  if (timeout < 0) {
    throw new RangeError(`Cannot poll: timeout "${timeout}" is negative`);
  }
  return timeout;
}

function checkMap(map: unknown): SocketMap {
  if (!(map instanceof Map)) {
    throw new TypeError("Cannot poll: map must be a Map of dispatchers");
  }
  return map;
}

function isCurrent(map: SocketMap, obj: Pollable): boolean {
  const fd = obj.fileno();
  return fd !== null && map.get(fd) === obj;
}

/** Longest a run of passes that do not wait goes without letting I/O land. */
const TURN_MS = 0.25;
/** Most passes that do not wait in a row without letting I/O land. */
const KICK_PASSES = 4;

/**
 * Most turns a pass takes while reads wait for admission; each channel is
 * still dispatched at most once a pass. Four cut the server's CPU per
 * message at 1000 connections by ~6 % (30 alternating windows); eight and
 * sixteen measured the same as four.
 */
const ADMIT_TURNS = 4;

/** What a pass found ready: `[readers, writers]`. */
type Ready = [readers: Pollable[], writers: Pollable[]];

// One pass: ask every channel what it wants and arm its read; then, if
// something is ready, have `handle` dispatch the channels found read- and
// write-ready (unless a hook's rejection has meanwhile asked the loop to
// stop). A pass that neither waits nor kicks dispatches at once: most passes
// of a busy loop, and a promise per pass would be most of their garbage. When
// nothing is ready, it returns how long to wait: run() waits itself and
// dispatches from there, since each promise hop between the wake-up and the
// dispatch costs every message on a quiet connection (an async function of
// its own per wait, with its promise, was ~1 % of the loop's instructions per
// message at 1 connection).
function scan(
  timeout: number,
  map: SocketMap,
  waker: Waker<Channel<Pollable>>,
  timers: Timers,
  handle: Dispatch,
): Promise<void> | number | undefined {
  const readers: Pollable[] = [];
  const writers: Pollable[] = [];
  const pass = waker.passes;
  for (const obj of map.values()) {
    const isReadable = obj.readable();
    const isWritable = obj.writable() && !obj.accepting;
    const channel = obj[kChannel];
    if (channel === null) continue;
    const ready = channel.visit(isReadable, isWritable);
    if (ready === 0) continue;
    channel.pass = pass;
    if (ready & READ_READY) readers.push(obj);
    if (ready & WRITE_READY) writers.push(obj);
  }
  // What is queued now the scan has already seen.
  waker.drain();
  const idle = readers.length === 0 && writers.length === 0;
  if (idle) {
    return waker.holding
      ? kickThenCollect(waker, timers, map, handle)
      : timers.bound(timeout * 1000);
  }
  // No wait, but settled I/O reaches JavaScript only when the runtime
  // polls the OS: without a yield that gets there, an always-writable
  // channel (Python's default) starves every read. What lands is picked up
  // by the next pass's scan. A kick costs more than a short pass, so it
  // comes after KICK_PASSES such passes while a read, accept or connect is
  // in flight (a channel still consuming its inbox has none), or after
  // TURN_MS (writes and the program's other tasks land then).
  if (
    (++waker.passesSinceTurn >= KICK_PASSES && waker.inFlight > 0) ||
    waker.busyFor(TURN_MS)
  ) {
    return kickThen(waker, timers, [readers, writers], map, handle);
  }
  finish([readers, writers], waker, timers, map, handle);
}

// Apart from scan(): a closure there would put its locals in a context.
async function kickThen(
  waker: Waker<Channel<Pollable>>,
  timers: Timers,
  ready: Ready,
  map: SocketMap,
  handle: Dispatch,
): Promise<void> {
  await kick();
  waker.turn();
  finish(ready, waker, timers, map, handle);
}

// Nothing is ready but reads wait for admission, or a pass takes another
// turn under admission: a kick lets the admitted reads land, and the pass
// reports them as a wait would (not a pass that reports nothing and leaves
// them to the next one).
async function kickThenCollect(
  waker: Waker<Channel<Pollable>>,
  timers: Timers,
  map: SocketMap,
  handle: Dispatch,
): Promise<void> {
  await kick();
  finish(collect(waker), waker, timers, map, handle);
}

// After a wait or a kick: the channels whose I/O landed meanwhile (the
// dispatch skips those no longer in the map).
function collect(waker: Waker<Channel<Pollable>>): Ready {
  waker.turn();
  const readers: Pollable[] = [];
  const writers: Pollable[] = [];
  const pass = waker.passes;
  let later: Channel<Pollable>[] | null = null;
  for (const channel of waker.drain()) {
    // Dispatched in an earlier turn of this pass: it waits for the next.
    if (channel.pass === pass) {
      (later ??= []).push(channel);
      continue;
    }
    const obj = channel.owner;
    const isReader = channel.wantRead && channel.readReady();
    const isWriter = channel.wantWrite && channel.writeReady();
    if (!isReader && !isWriter) continue;
    channel.pass = pass;
    if (isReader) readers.push(obj);
    if (isWriter) writers.push(obj);
  }
  if (later !== null) { for (const channel of later) waker.push(channel); }
  return [readers, writers];
}

/**
 * One pass of the loop, as `select()` drives it in Python: waits up to
 * `timeout` seconds (or until the next timer's deadline) until some channel
 * is ready, then runs the timers that are due, calls `handle_read_event()` on
 * each read-ready channel and `handle_write_event()` on each write-ready
 * one. Returns at once when `map` is empty and has no timer. Called while a
 * {@linkcode loop} serves `map`, it waits for that loop's next pass instead
 * of running one beside it.
 *
 * @example Poll an empty map
 * ```ts
 * import { poll } from "@asyncore/asyncore";
 *
 * await poll(0, new Map());
 * ```
 *
 * @param timeout Seconds to wait for readiness; `0` (the default) only lets
 * settled I/O land.
 * @param map The socket map to serve. Default {@linkcode socket_map}.
 * @throws {ExitNow} If a handler throws it.
 * @throws {TypeError} If `timeout` is not a number or `map` not a `Map`.
 * @throws {RangeError} If `timeout` is negative.
 */
export function poll(timeout?: number, map?: SocketMap): Promise<void> {
  return alone(dispatch, timeout, map);
}

// A due timer runs like a hook: a dispatcher's own goes through route(); an
// error from one no dispatcher owns ends loop() (there is no handle_error()),
// so its pending promise keeps the loop running until it settles: whether
// the rejection is seen must not depend on other work being left.
function runTimer(owner: object | null, fn: TimerCallback, map: object): void {
  if (owner !== null) {
    route(owner as Pollable, fn);
    return;
  }
  const result = fn();
  if (isThenable(result)) {
    const timers = timersFor(map);
    timers.running++;
    result.then(() => {
      timers.running--;
      wakerFor(map).wake();
    }, (error: unknown) => {
      timers.running--;
      wakerFor(map).stop(error);
    });
  }
}

/** How a pass dispatches what it found ready: poll()'s way or poll2()'s. */
type Dispatch = (ready: Ready, map: SocketMap, timers: Timers) => void;

function finish(
  ready: Ready,
  waker: Waker,
  timers: Timers,
  map: SocketMap,
  handle: Dispatch,
): void {
  const exit = waker.takeExit();
  if (exit !== null) throw exit.error;
  // The writes of a dispatch of several channels leave back to back once
  // its hooks have run (see deferWrites()); one channel writes in its hook.
  const deferring = severalChannels(ready) && deferWrites();
  try {
    handle(ready, map, timers);
  } finally {
    if (deferring) startDeferredWrites();
  }
}

function severalChannels([readers, writers]: Ready): boolean {
  const n = readers.length + writers.length;
  return n > 2 || (n === 2 && readers[0] !== writers[0]);
}

function dispatch(
  [readers, writers]: Ready,
  map: SocketMap,
  timers: Timers,
): void {
  timers.runDue(runTimer);
  for (const obj of readers) {
    if (isCurrent(map, obj)) {
      readHooked(obj, read, 0);
      if (obj.accepting) acceptMore(obj, map, read);
    }
  }
  for (const obj of writers) if (isCurrent(map, obj)) write(obj);
}

// A read event goes through the channel, which starts the next read once the
// hook has sent its reply.
function readHooked(
  obj: Pollable,
  event: (obj: Pollable, flags: number) => void,
  flags: number,
): void {
  const channel = obj[kChannel];
  if (channel === null) event(obj, flags);
  else channel.hooked(event, flags);
}

// poll() and poll2(): one pass called on its own (not by loop()), which
// checks their arguments.
async function alone(
  handle: Dispatch,
  timeout: number | undefined,
  map: SocketMap | undefined,
): Promise<void> {
  const seconds = checkTimeout(timeout === undefined ? 0 : timeout);
  map ??= socket_map;
  if (checkMap(map).size === 0 && !hasTimers(map)) return;
  await run(handle, seconds, map, 1, undefined);
}

function hasWork(map: SocketMap): boolean {
  return map.size > 0 || hasTimers(map);
}

// Runs up to `count` passes on `map`, and leaves no timer behind. While
// another loop drives the map's passes (this one was called from a hook, or
// beside it), this one counts those instead of running its own (two waits
// on one waker would leave one waiting forever), and drives once that one
// stops on its own count or signal.
async function run(
  handle: Dispatch,
  seconds: number,
  map: SocketMap,
  count: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const waker = wakerFor<Channel<Pollable>>(map);
  const timers = timersFor(map);
  let left = count;
  while (waker.looping) {
    if (left === 0 || signal?.aborted || !hasWork(map)) return;
    const follower = await follow(waker, left, signal);
    if (follower.end !== "handover") return;
    left = follower.left;
  }
  // No await since the check above: one loop alone takes over.
  waker.looping = true;
  const onAbort = (): void => waker.wake();
  signal?.addEventListener("abort", onAbort);
  let end: "handover" | "stopped" = "stopped";
  try {
    // Pending timers keep the loop running, as in pyftpdlib (async ones
    // until their promise settles).
    while (hasWork(map) && left > 0 && !signal?.aborted) {
      waker.beginPass();
      const next = scan(seconds, map, waker, timers, handle);
      if (typeof next === "number") {
        await waker.wait(next);
        finish(collect(waker), waker, timers, map, handle);
      }
      // Awaited even when the pass has dispatched already: microtasks (an
      // async hook's next step) run between passes. Without it, 10,000
      // connections took twice as long to set up.
      await next;
      // While reads wait for admission, the pass takes more turns: each
      // lands about ADMIT_PER_TURN messages, and a scan between them would
      // find nothing the turn did not report (at 1000 connections, 1000
      // visits per 64 messages).
      for (
        let turn = 1;
        turn < ADMIT_TURNS && waker.holding && !signal?.aborted;
        turn++
      ) await kickThenCollect(waker, timers, map, handle);
      waker.endPass();
      left--;
    }
    end = "handover";
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // A rejection is delivered once, to this loop: the loops waiting on it
    // stop too, as Python's nested loops all unwind on ExitNow.
    waker.release(end);
    waker.idle();
  }
}

// Counts `left` passes another loop drives, until they ran, that loop
// stopped, or `signal` aborted ("stopped"); resolves with the passes left.
function follow(
  waker: Waker,
  left: number,
  signal: AbortSignal | undefined,
): Promise<{ end: FollowEnd; left: number }> {
  return new Promise((resolve) => {
    const done = (end: FollowEnd): void => {
      signal?.removeEventListener("abort", onAbort);
      resolve({ end, left: follower.left });
    };
    const follower = waker.follow(left, done);
    const onAbort = (): void => {
      waker.unfollow(follower);
      done("stopped");
    };
    signal?.addEventListener("abort", onAbort);
  });
}

/**
 * One pass of the loop as Python's `poll.poll()` drives it: like
 * {@linkcode poll}, but each ready channel gets one {@linkcode readwrite}
 * call, so disconnect errors go to `handle_close()`.
 *
 * @example Poll an empty map
 * ```ts
 * import { poll2 } from "@asyncore/asyncore";
 *
 * await poll2(0, new Map());
 * ```
 *
 * @param timeout Seconds to wait for readiness. Default 0.
 * @param map The socket map to serve. Default {@linkcode socket_map}.
 * @throws {ExitNow} If a handler throws it.
 * @throws {TypeError} If `timeout` is not a number or `map` not a `Map`.
 * @throws {RangeError} If `timeout` is negative.
 */
export function poll2(timeout?: number, map?: SocketMap): Promise<void> {
  return alone(dispatch2, timeout, map);
}

function dispatch2(
  [readers, writers]: Ready,
  map: SocketMap,
  timers: Timers,
): void {
  timers.runDue(runTimer);
  const flags = new Map<Pollable, number>();
  for (const obj of readers) flags.set(obj, POLLIN);
  for (const obj of writers) flags.set(obj, (flags.get(obj) ?? 0) | POLLOUT);
  for (const [obj, bits] of flags) {
    if (isCurrent(map, obj)) {
      readHooked(obj, readwrite, bits);
      if (obj.accepting) acceptMore(obj, map, acceptEvent);
    }
  }
}

function acceptEvent(obj: Pollable): void {
  readwrite(obj, POLLIN);
}

// A listener with more connections already accepted gets handle_accept()
// for them in the same pass (asking readable() first, as a pass would), up
// to ACCEPT_AHEAD: a scan of every channel per connection would make
// accepting N connections cost O(N²). It stops at a handle_accept() that
// takes none, which the next pass calls again, as Python's loop would.
function acceptMore(
  obj: Pollable,
  map: SocketMap,
  event: (obj: Pollable) => void,
): void {
  const channel = obj[kChannel];
  if (channel === null) return;
  for (let calls = 1; calls < ACCEPT_AHEAD; calls++) {
    const waiting = channel.acceptQueued;
    if (waiting === 0 || !isCurrent(map, obj) || !obj.readable()) return;
    event(obj);
    if (channel.acceptQueued >= waiting) return;
  }
}

/** Python's alias of {@linkcode poll2}. */
export const poll3: typeof poll2 = poll2;

/** Options of {@linkcode loop}. */
export interface LoopOptions {
  /**
   * Seconds one pass waits for readiness. `null` waits without bound, and
   * keeps no timer pending while the loop sleeps (unless the map has timers
   * of its own): a server that only I/O and a `signal` drive wakes up
   * cheaper so (see "Timers" in docs/design.md).
   *
   * @default {30}
   */
  timeout?: number | null;
  /**
   * Dispatch through {@linkcode poll2} (as Python's `use_poll=True` does)
   * instead of {@linkcode poll}; readiness is the same either way.
   *
   * @default {false}
   */
  use_poll?: boolean;
  /**
   * The socket map to serve.
   *
   * @default {socket_map}
   */
  map?: SocketMap;
  /**
   * Stop after this many passes; without it, run until `map` is empty and
   * has no pending timer.
   */
  count?: number;
  /** Stop (resolving, not rejecting) once this signal aborts. */
  signal?: AbortSignal;
}

/**
 * Runs passes of {@linkcode poll} until the map is empty and no timer is
 * pending on it, `count` passes are done, or `signal` aborts. Rejects with
 * {@linkcode ExitNow} (or what a `handle_error()` threw, any value,
 * `undefined` too) when a handler raises it. Any other error a hook throws
 * goes to that channel's `handle_error()`, whose default closes it: one
 * broken handler cannot stop a server, for any thrown value.
 *
 * One map, several loops: a `loop()` (or {@linkcode poll}) called while
 * another loop is serving the same map, from inside a hook (Python's
 * re-entrant `loop()`) or from anywhere else, runs no passes of its own. It
 * counts the passes of the running loop, starting with the next one, and
 * settles on its own terms: after `count` of them, when its `signal` aborts,
 * or once the map is empty with no pending timer, as a nested Python loop
 * returns after its passes. Should the running loop stop first (its own
 * `count` or `signal`), a waiting loop goes on driving the passes; should it
 * reject, the error is delivered to it alone and the waiting loops resolve.
 * So an awaited `loop({ count })` inside an async hook settles, and nothing
 * hangs.
 *
 * @example Serve until aborted
 * ```ts
 * import { close_all, Dispatcher, loop } from "@asyncore/asyncore";
 *
 * const server = new Dispatcher();
 * server.create_socket();
 * server.bind(["127.0.0.1", 0]);
 * server.listen(5);
 * const stop = new AbortController();
 * setTimeout(() => stop.abort(), 10);
 * await loop({ signal: stop.signal });
 * close_all();
 * ```
 *
 * @param options Timeout, map, pass count and abort signal.
 * @returns A promise that settles when the loop stops.
 * @throws {ExitNow} If a handler throws it.
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If `timeout` or `count` is negative.
 */
export function loop(options?: LoopOptions): Promise<void>;
/**
 * Python's positional form, `asyncore.loop(timeout, use_poll, map, count)`:
 * the same as `loop({ timeout, use_poll, map, count })`. `null` (Python's
 * `None`) for `map` or `count` means the default.
 *
 * @example Two passes, Python's way
 * ```ts
 * import { close_all, Dispatcher, loop } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * const server = new Dispatcher();
 * server.create_socket();
 * server.bind(["127.0.0.1", 0]);
 * server.listen(5);
 * await loop(0.01, false, null, 2);
 * assert.equal(server.accepting, true);
 * close_all();
 * ```
 *
 * @param timeout Seconds one pass waits for readiness; `null` waits without
 * bound. Default 30.
 * @param use_poll Dispatch through {@linkcode poll2}. Default `false`.
 * @param map The socket map to serve. Default {@linkcode socket_map}.
 * @param count Stop after this many passes. Default: run until `map` is
 * empty and has no pending timer.
 * @returns A promise that settles when the loop stops.
 * @throws {ExitNow} If a handler throws it.
 * @throws {TypeError} If an argument has the wrong type.
 * @throws {RangeError} If `timeout` or `count` is negative.
 */
export function loop(
  timeout?: number | null,
  use_poll?: boolean,
  map?: SocketMap | null,
  count?: number | null,
): Promise<void>;
export async function loop(
  first?: LoopOptions | number | null,
  ...rest: unknown[]
): Promise<void> {
  const options = loopOptions(first, rest);
  const { use_poll = false, map = socket_map, count, signal } = options;
  const timeout = checkTimeout(
    options.timeout === undefined ? 30 : options.timeout,
  );
  checkMap(map);
  if (count !== undefined && typeof count !== "number") {
    throw new TypeError(
      `Cannot run loop: count must be a number, got ${typeof count}`,
    );
  }
  if (count !== undefined && (!Number.isInteger(count) || count < 0)) {
    throw new RangeError(
      `Cannot run loop: count "${count}" is not a non-negative integer`,
    );
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("Cannot run loop: signal must be an AbortSignal");
  }
  const handle = use_poll ? dispatch2 : dispatch;
  try {
    await run(handle, timeout, map, count ?? Infinity, signal);
  } finally {
    // A loop that ran out of channels leaves nothing open behind it.
    if (map.size === 0) closeKick();
  }
}

// Both call styles become one options object; null is Python's None.
function loopOptions(first: unknown, rest: unknown[]): LoopOptions {
  if (typeof first === "object" && first !== null) {
    if (Array.isArray(first)) {
      throw new TypeError(
        "Cannot run loop: options must be an object, got an array",
      );
    }
    if (rest.length > 0) {
      throw new TypeError(
        "Cannot run loop: pass either an options object or positional arguments, not both",
      );
    }
    return first as LoopOptions;
  }
  if (first !== undefined && first !== null && typeof first !== "number") {
    throw new TypeError(
      `Cannot run loop: timeout must be a number of seconds or an options object, got ${typeof first}`,
    );
  }
  if (rest.length > 3) {
    throw new TypeError(
      `Cannot run loop: expected at most 4 arguments, got ${rest.length + 1}`,
    );
  }
  const [usePoll, map, count] = rest;
  if (usePoll !== undefined && typeof usePoll !== "boolean") {
    throw new TypeError(
      `Cannot run loop: use_poll must be a boolean, got ${typeof usePoll}`,
    );
  }
  const options: LoopOptions = {};
  if (first !== undefined) options.timeout = first;
  if (usePoll !== undefined) options.use_poll = usePoll;
  if (map !== undefined && map !== null) options.map = map as SocketMap;
  if (count !== undefined && count !== null) options.count = count as number;
  return options;
}

/**
 * Closes every dispatcher in `map` and empties it. Errors from `close()`
 * propagate unless `ignore_all`; {@linkcode ExitNow} always does. An
 * `ExitNow` that a closed channel's async hook raised after `loop()` had
 * already stopped is dropped too, so it cannot end the next loop.
 *
 * @example Close everything
 * ```ts
 * import { close_all, Dispatcher, socket_map } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * new Dispatcher().create_socket();
 * close_all();
 * assert.equal(socket_map.size, 0);
 * ```
 *
 * @param map The socket map to close. Default {@linkcode socket_map}.
 * @param ignore_all Swallow every error but {@linkcode ExitNow}. Default
 * `false`.
 * @throws {ExitNow} If a `close()` throws it.
 */
export function close_all(
  map?: SocketMap | null,
  ignore_all?: boolean,
): void {
  map ??= socket_map;
  for (const obj of [...map.values()]) {
    try {
      obj.close();
    } catch (error) {
      if (isInstance(error, ExitNow)) throw error;
      if (isInstance(error, Deno.errors.BadResource)) continue;
      if (!ignore_all) throw error;
    }
  }
  map.clear();
  cancelAll(map);
  const waker = wakerFor(map);
  waker.takeExit();
  waker.forget();
  waker.idle();
  closeKick();
}

/** `[file, function, line]` of one stack frame. */
export type Frame = [file: string, fn: string, line: string];

/**
 * What {@linkcode compact_traceback} returns: the innermost frame, the error's
 * class name, its message, and every frame as `[file|function|line]`,
 * outermost first.
 */
export type CompactTraceback = [
  innermost: Frame,
  type: string,
  value: string,
  info: string,
];

const FRAME = /^\s*at (?:(.+?) \()?(.+?):(\d+):\d+\)?$/;

/**
 * Summarises an error's stack the way Python's `asyncore.compact_traceback()`
 * summarises the current exception.
 *
 * @example Summarise an error
 * ```ts
 * import { compact_traceback } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * function fails(): never {
 *   throw new RangeError("boom");
 * }
 * try {
 *   fails();
 * } catch (error) {
 *   const [[, fn], type, value] = compact_traceback(error);
 *   assert.equal(fn, "fails");
 *   assert.equal(type, "RangeError");
 *   assert.equal(value, "boom");
 * }
 * ```
 *
 * A part that cannot be read (a `message` getter that throws, a class
 * without a name) reads `<exception str() failed>` or `Error`, as Python's
 * `traceback` module words it: summarising never fails on a value that was
 * thrown, only on one without a stack.
 *
 * @param error The caught error.
 * @returns The innermost frame, class name, message and frame summary.
 * @throws {TypeError} If `error` is not an `Error` with a stack trace
 * (`Object.create(null)`, a string, a revoked Proxy, …).
 */
export function compact_traceback(error: unknown): CompactTraceback {
  let stack: unknown;
  try {
    stack = error instanceof Error ? stackOf(error) : undefined;
  } catch {
    // a stack getter that throws, or a revoked Proxy: no frames
  }
  const frames: Frame[] = [];
  for (const line of typeof stack === "string" ? stack.split("\n") : []) {
    const match = FRAME.exec(line);
    if (match) frames.push([match[2]!, match[1] ?? "<anonymous>", match[3]!]);
  }
  const innermost = frames[0];
  if (innermost === undefined) {
    throw new TypeError("Cannot compact traceback: the error has no stack");
  }
  const err = error as Error;
  const info = frames.reverse().map((f) => `[${f.join("|")}]`).join(" ");
  let type = "Error";
  try {
    type = String(err.constructor.name) || type;
  } catch {
    // a constructor or name getter that throws
  }
  let value: string;
  try {
    value = String(err.message);
  } catch {
    value = STR_FAILED;
  }
  return [innermost, type, value, info];
}
