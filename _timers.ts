// The timers of each socket map: a binary min-heap of deadlines, ordered by
// deadline and then by scheduling order. Every entry knows its index, so a
// cancel or a reset is O(log n) and the heap never holds dead entries: a
// server with one idle timer per connection at 10k connections pays
// O(log n) per reschedule and nothing per pass. The loop asks for the next
// deadline to bound its wait and runs what is due once per pass (loop.ts).

import { kindOf } from "./_errors.ts";
import { wakerFor } from "./_waker.ts";

/** What a timer's callback may return: nothing, or a promise of nothing. */
export type TimerResult = void | PromiseLike<void>;

/** A timer's callback: it may be async; a rejection is routed like a throw. */
export type TimerCallback = () => TimerResult;

/**
 * One scheduled call (a TimerHandle wraps it). `owner` is the dispatcher it
 * belongs to, if any.
 */
export class Entry {
  /** performance.now() at which the call is due. */
  deadline = 0;
  /** Scheduling order: breaks ties between equal deadlines (FIFO). */
  seq = 0;
  /** Position in the heap, or -1 while not scheduled. */
  index = -1;
  cancelled = false;
  /** Milliseconds from now that reset() uses. */
  delay: number;
  constructor(
    readonly timers: Timers,
    delay: number,
    /** 0 for a one-shot call, else the period in milliseconds. */
    public interval: number,
    readonly fn: () => TimerResult,
    readonly owner: object | null,
  ) {
    this.delay = delay;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.deadline < b.deadline ||
    (a.deadline === b.deadline && a.seq < b.seq);
}

/** Runs one due call: loop.ts routes its errors. */
export type Runner = (
  owner: object | null,
  fn: TimerCallback,
  map: object,
) => void;

/** One map's timers. */
export class Timers {
  readonly heap: Entry[] = [];
  /**
   * Promises of callbacks no dispatcher owns that have not settled: their
   * rejection ends loop(), so they keep it running until they settle.
   */
  running = 0;
  #seq = 0;
  readonly #map: object;

  constructor(map: object) {
    this.#map = map;
  }

  /** Puts `entry` in the heap (again) at `deadline`. */
  schedule(entry: Entry, deadline: number): void {
    if (entry.index >= 0) this.remove(entry);
    entry.deadline = deadline;
    entry.seq = ++this.#seq;
    const heap = this.heap;
    entry.index = heap.length;
    heap.push(entry);
    this.#up(entry.index);
    if (entry.owner !== null) ownedBy(entry.owner).add(entry);
    // A loop waiting past the new first deadline must wait again, shorter.
    if (heap[0] === entry) wakerFor(this.#map).wake();
  }

  /** Takes `entry` out of the heap. */
  remove(entry: Entry): void {
    const heap = this.heap;
    const i = entry.index;
    if (i < 0) return;
    entry.index = -1;
    const last = heap.pop()!;
    if (last !== entry) {
      heap[i] = last;
      last.index = i;
      this.#up(i);
      this.#down(last.index);
    }
    if (entry.owner !== null) owned.get(entry.owner)?.delete(entry);
  }

  /** The first deadline, or Infinity. */
  next(): number {
    return this.heap[0]?.deadline ?? Infinity;
  }

  /** `ms`, shortened so a wait of that long ends by the next deadline. */
  bound(ms: number): number {
    if (this.heap.length === 0) return ms;
    const left = this.next() - performance.now();
    return left < ms ? Math.max(left, 0) : ms;
  }

  /**
   * Runs every call due by now, in deadline order, through `run`. Calls
   * scheduled (or rescheduled) while these run wait for the next pass, so a
   * timer that schedules another with no delay cannot hold the pass.
   */
  runDue(run: Runner): void {
    const heap = this.heap;
    const first = heap[0];
    if (first === undefined) return;
    const now = performance.now();
    if (first.deadline > now) return;
    const last = this.#seq;
    for (let entry = heap[0]; entry !== undefined; entry = heap[0]) {
      if (entry.deadline > now || entry.seq > last) break;
      if (entry.interval > 0) {
        // Fixed rate; after a stall, the next call is a period away rather
        // than a burst of the missed ones.
        let deadline = entry.deadline + entry.interval;
        if (deadline <= now) deadline = now + entry.interval;
        this.schedule(entry, deadline);
      } else {
        this.remove(entry);
      }
      run(entry.owner, entry.fn, this.#map);
    }
  }

  /** Cancels every call. */
  clear(): void {
    for (const entry of this.heap) {
      entry.index = -1;
      entry.cancelled = true;
      if (entry.owner !== null) owned.get(entry.owner)?.delete(entry);
    }
    this.heap.length = 0;
  }

  #up(i: number): void {
    const heap = this.heap;
    const entry = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = heap[parent]!;
      if (!before(entry, above)) break;
      heap[i] = above;
      above.index = i;
      i = parent;
    }
    heap[i] = entry;
    entry.index = i;
  }

  #down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && before(heap[right]!, heap[child]!)) child = right;
      const below = heap[child]!;
      if (!before(below, entry)) break;
      heap[i] = below;
      below.index = i;
      i = child;
    }
    heap[i] = entry;
    entry.index = i;
  }
}

/**
 * A scheduled call, as {@linkcode call_later} and {@linkcode call_every}
 * return it: cancel it, or restart its countdown.
 *
 * @example Cancel a call before it runs
 * ```ts
 * import { call_later } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * const handle = call_later(60, () => {});
 * assert.equal(handle.active, true);
 * handle.cancel();
 * assert.equal(handle.cancelled, true);
 * assert.equal(handle.active, false);
 * ```
 */
export class TimerHandle {
  readonly #entry: Entry;

  /** @ignore Made by call_later() and call_every(). */
  constructor(entry: Entry) {
    this.#entry = entry;
  }

  /**
   * Whether {@linkcode TimerHandle.cancel} was called (or `close_all()`, or
   * the owning dispatcher's `close()`, cancelled it).
   *
   * @returns `true` once cancelled.
   */
  get cancelled(): boolean {
    return this.#entry.cancelled;
  }

  /**
   * Whether the call is still to run: scheduled, not cancelled, and (for
   * {@linkcode call_later}) not run yet.
   *
   * @returns `true` while a call is pending.
   */
  get active(): boolean {
    return this.#entry.index >= 0;
  }

  /**
   * Cancels the call; it never runs again. Safe to call more than once, and
   * from the callback itself.
   */
  cancel(): void {
    const entry = this.#entry;
    entry.cancelled = true;
    entry.timers.remove(entry);
  }

  /**
   * Restarts the countdown: the call runs `seconds` from now (pyftpdlib's
   * `reset()`, and its `delay()` when given a new delay). For
   * {@linkcode call_every}, `seconds` becomes the new period. A call that has
   * already run is scheduled again; an idle timeout is a `reset()` on each
   * sign of life.
   *
   * @param seconds The new delay; default the one last given.
   * @throws {Error} If the call was cancelled.
   * @throws {TypeError} If `seconds` is not a number.
   * @throws {RangeError} If `seconds` is negative, not finite, or 0 for
   * {@linkcode call_every}.
   */
  reset(seconds?: number): void {
    const entry = this.#entry;
    if (entry.cancelled) {
      throw new Error("Cannot reset: the timer was cancelled");
    }
    if (seconds !== undefined) {
      entry.delay = checkSeconds(seconds, "reset", entry.interval > 0);
      if (entry.interval > 0) entry.interval = entry.delay;
    }
    entry.timers.schedule(entry, performance.now() + entry.delay);
  }
}

/**
 * Schedules `fn` on `map`'s loop, once or `every` `seconds`, owned by `owner`
 * if not null (call_later(), call_every() and Dispatcher's methods).
 */
export function schedule(
  map: object,
  seconds: number,
  every: boolean,
  fn: TimerCallback,
  owner: object | null,
): TimerHandle {
  const action = every ? "call every" : "call later";
  const ms = checkSeconds(seconds, action, every);
  if (typeof fn !== "function") {
    throw new TypeError(
      `Cannot ${action}: fn must be a function, got ${typeof fn}`,
    );
  }
  const timers = timersFor(map);
  const entry = new Entry(timers, ms, every ? ms : 0, fn, owner);
  timers.schedule(entry, performance.now() + ms);
  return new TimerHandle(entry);
}

const timers = new WeakMap<object, Timers>();
const owned = new WeakMap<object, Set<Entry>>();

function ownedBy(owner: object): Set<Entry> {
  let set = owned.get(owner);
  if (set === undefined) {
    set = new Set();
    owned.set(owner, set);
  }
  return set;
}

/** The timers of `map`, created on first use. */
export function timersFor(map: object): Timers {
  let found = timers.get(map);
  if (found === undefined) {
    found = new Timers(map);
    timers.set(map, found);
  }
  return found;
}

/** Whether `map` has calls scheduled, or async ones still running. */
export function hasTimers(map: object): boolean {
  const found = timers.get(map);
  return found !== undefined && (found.heap.length > 0 || found.running > 0);
}

/** Cancels every call `owner` scheduled (its `close()` calls this). */
export function cancelOwned(owner: object): void {
  const set = owned.get(owner);
  if (set === undefined || set.size === 0) return;
  for (const entry of [...set]) {
    entry.cancelled = true;
    entry.timers.remove(entry);
  }
}

/** Cancels every call scheduled on `map` (`close_all()` calls this). */
export function cancelAll(map: object): void {
  timers.get(map)?.clear();
}

/** Checks a delay in seconds and returns it in milliseconds. */
export function checkSeconds(
  seconds: unknown,
  action: string,
  positive: boolean,
): number {
  if (typeof seconds !== "number" || Number.isNaN(seconds)) {
    throw new TypeError(
      `Cannot ${action}: seconds must be a number, got ${kindOf(seconds)}`,
    );
  }
  if (!Number.isFinite(seconds) || seconds < 0 || (positive && seconds === 0)) {
    throw new RangeError(
      `Cannot ${action}: seconds "${seconds}" is not a ${
        positive ? "positive" : "non-negative"
      } finite number`,
    );
  }
  return seconds * 1000;
}
