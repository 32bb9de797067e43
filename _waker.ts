// The wake-up side of the loop: each socket map has one Waker. A channel whose
// operation settles pushes itself onto its map's queue and resolves the single
// promise the loop is waiting on, so a wait costs O(1) however many channels
// have operations in flight.

import { Fifo } from "./_fifo.ts";

/** Something the waker can queue: a channel with a dedupe flag. */
export interface Queued {
  queued: boolean;
  /** Set while the channel waits in the admission queue. */
  admitQueued: boolean;
  /** Starts the read the admission queue held back, if still wanted. */
  armRead(): void;
}

// Fair service. Deno drives every pending op from one FuturesUnordered inside
// a tokio task whose coop budget (128 polls) runs out when many reads complete
// at once; the reads it could not poll are deferred behind the next epoll
// turn, while the connections just served re-arm at once and complete again
// first. At 1000 busy connections that starves most of them for seconds.
// Admitting at most ADMIT_PER_TURN new reads per loop turn, in FIFO order,
// makes a served connection wait behind the ones not yet served. Each read
// admitted brings a write (its reply) to the same driver, so 64 keeps a
// turn's ops within the budget (measured at 1000 connections: 32 and 64 are
// fair, 64 serves 10% more; 128 starves some connections for seconds).
// Admission stays on when DENO_TOKIO_MAX_IO_EVENTS_PER_TICK caps the
// runtime's ticks: a read admitted late finds its bytes waiting and completes
// at once, without a trip through epoll, and under that cap it served ~10%
// more than admitting every read (1000 connections, 8 interleaved runs).
export const ADMIT_PER_TURN = 64;
// With no more reads in flight than the budget, all that complete at once are
// polled together and none is deferred: admission would only reorder them
// (at 100 connections it cost 5% of the throughput and fairness 1.00 -> 0.75).
/** In-flight reads below which a read starts without waiting for admission. */
export const FREE_READS = 128;

/**
 * Why a loop that counted another's passes stops counting: its passes ran;
 * the driving loop stopped on its own count or signal (the waiting loop
 * drives from now on); or the driving loop rejected (it stops too).
 */
export type FollowEnd = "ran" | "handover" | "stopped";

/** A loop counting the passes another loop drives on its map. */
export interface Follower {
  /** Passes still to count. */
  left: number;
  /** Set while the pass in progress began before this loop came. */
  fresh: boolean;
  done: (end: FollowEnd) => void;
}

/** One map's ready queue and the loop's single wake-up promise. */
export class Waker<T extends Queued = Queued> {
  queue: T[] = [];
  /** Set while a `loop()` drives passes on this map. */
  looping = false;
  /** Loops counting the passes of the one that drives. */
  #followers = new Set<Follower>();
  #inPass = false;
  /**
   * Set while an error a hook's rejected promise raised must end `loop()`
   * (it is in #exit): a flag of its own, since any value, `undefined` too,
   * can be thrown.
   */
  #exiting = false;
  #exit: unknown = undefined;
  /**
   * performance.now() at the first pass since the event loop last turned
   * that did not wait; -1 until there is one. Stamped then, not at the turn:
   * most turns are followed by a pass that waits, and reading the clock
   * costs more than a short pass's bookkeeping.
   */
  #busySince = -1;
  /** Passes since then that did not wait. */
  passesSinceTurn = 0;
  /**
   * Reads, accepts and connects in flight on this map's channels: only their
   * completions need a kick to land between passes that do not wait.
   */
  inFlight = 0;
  /** Reads that may still start this turn. */
  #admits = ADMIT_PER_TURN;
  /** Channels whose read waits for a later turn. */
  #held = new Fifo<T>();
  #resolve: (() => void) | null = null;
  // One timer serves many waits: arming and clearing a timer per wait costs
  // more than a whole echo round trip, so a wait ended by I/O leaves the timer
  // running, and when it fires early for a later wait it is armed again for
  // the rest of that wait's time. idle() clears it once the loop stops.
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #timerAt = Infinity;
  #deadline = Infinity;
  #onTimeout = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#resolve === null) return;
    const left = this.#deadline - performance.now();
    if (left > 1) this.#arm(left);
    else this.wake();
  };

  /**
   * Whether `item` may start a read now; if not, it is queued (once) and
   * started by a later {@linkcode Waker.turn}.
   */
  admit(item: T): boolean {
    if (this.inFlight < FREE_READS && !this.holding) return true;
    if (this.#admits > 0) {
      this.#admits--;
      return true;
    }
    if (!item.admitQueued) {
      item.admitQueued = true;
      this.#held.push(item);
    }
    return false;
  }

  /** True while reads wait for admission. */
  get holding(): boolean {
    return this.#held.length > 0;
  }

  /**
   * Whether passes that did not wait have kept the event loop from turning
   * for `ms` milliseconds (counted from the first of them).
   */
  busyFor(ms: number): boolean {
    const now = performance.now();
    if (this.#busySince < 0) {
      this.#busySince = now;
      return false;
    }
    return now - this.#busySince >= ms;
  }

  /**
   * The event loop has turned (a wait or a kick ended): renews the budget,
   * starts held reads first, and restarts the count towards the next kick.
   */
  turn(): void {
    this.#busySince = -1;
    this.passesSinceTurn = 0;
    this.#admits = ADMIT_PER_TURN;
    const held = this.#held;
    while (this.#admits > 0 && held.length > 0) {
      const item = held.shift()!;
      item.admitQueued = false;
      item.armRead();
    }
  }

  /**
   * Counts the next `left` passes for a loop that does not drive (the pass
   * in progress, if any, is not one of them); `done` is called once.
   */
  follow(left: number, done: (end: FollowEnd) => void): Follower {
    const follower = { left, fresh: this.#inPass, done };
    this.#followers.add(follower);
    return follower;
  }

  /** Stops counting for `follower` (its signal aborted). */
  unfollow(follower: Follower): void {
    this.#followers.delete(follower);
  }

  /** Passes begun on this map: a pass's number while it runs. */
  passes = 0;

  /** The driving loop begins a pass. */
  beginPass(): void {
    this.passes++;
    this.#inPass = true;
    if (this.#followers.size > 0) {
      for (const follower of this.#followers) follower.fresh = false;
    }
  }

  /** The driving loop ended a pass. */
  endPass(): void {
    this.#inPass = false;
    if (this.#followers.size === 0) return;
    for (const follower of this.#followers) {
      if (!follower.fresh && --follower.left <= 0) {
        this.#followers.delete(follower);
        follower.done("ran");
      }
    }
  }

  /** The driving loop stopped; `end` tells the waiting loops why. */
  release(end: "handover" | "stopped"): void {
    this.looping = false;
    this.#inPass = false;
    const followers = [...this.#followers];
    this.#followers.clear();
    for (const follower of followers) follower.done(end);
  }

  /** Makes the loop reject with `error` (the first one wins) and wakes it. */
  stop(error: unknown): void {
    if (!this.#exiting) {
      this.#exiting = true;
      this.#exit = error;
    }
    this.wake();
  }

  /** Takes the error that must end the loop, if any. */
  takeExit(): { error: unknown } | null {
    if (!this.#exiting) return null;
    const error = this.#exit;
    this.#exiting = false;
    this.#exit = undefined;
    return { error };
  }

  /** Queues `item` (once) and wakes a waiting loop. */
  push(item: T): void {
    if (!item.queued) {
      item.queued = true;
      this.queue.push(item);
    }
    this.wake();
  }

  /** Ends the current wait, if any. */
  wake(): void {
    const resolve = this.#resolve;
    if (resolve !== null) {
      this.#resolve = null;
      resolve();
    }
  }

  /** Waits until `wake()` or `ms` milliseconds, whichever comes first. */
  wait(ms: number): Promise<void> {
    if (this.queue.length > 0 || this.#exiting) {
      return Promise.resolve();
    }
    if (ms === Infinity) {
      // No bound, so no timer stays pending while the loop sleeps: with one
      // pending, every sleep of the runtime has a deadline, and each wake-up
      // costs more (~6 % of the CPU per message at one connection, measured
      // with raw Deno too). With the timer gone, no stale deadline is read.
      this.idle();
    } else {
      this.#deadline = performance.now() + ms;
      // A zero timeout still yields one macrotask so pending I/O can land.
      if (this.#timer === undefined || this.#timerAt > this.#deadline) {
        this.#arm(ms);
      }
    }
    return new Promise<void>(this.#waiting);
  }

  // One executor for every wait: a closure per wait is garbage per message
  // on a quiet connection.
  #waiting = (resolve: () => void): void => {
    this.#resolve = resolve;
  };

  /**
   * Forgets what the map's channels, all closed now, left behind (`close_all()`):
   * reads held for admission, queued wake-ups and the count towards the next
   * kick. A held read would otherwise make the next loop on the map hold
   * back every new channel's read until a turn.
   */
  forget(): void {
    for (const item of this.#held.entries()) item.admitQueued = false;
    this.#held.clear();
    this.drain();
    // With nothing held, a turn only restarts the budget and the counts.
    this.turn();
  }

  /** Clears the timer: nothing of the loop stays pending once it stops. */
  idle(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
  }

  #arm(ms: number): void {
    this.idle();
    // Timers cap at 2^31-1 ms and would fire at once beyond it.
    const delay = Math.min(ms, MAX_TIMER_MS);
    this.#timer = setTimeout(this.#onTimeout, delay);
    this.#timerAt = performance.now() + delay;
  }

  /** Takes every queued item and clears their flags. */
  drain(): T[] {
    const items = this.queue;
    if (items.length === 0) return items;
    this.queue = [];
    for (const item of items) item.queued = false;
    return items;
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const wakers = new WeakMap<object, Waker>();

/** The waker of `map`, created on first use. */
export function wakerFor<T extends Queued>(map: object): Waker<T> {
  let waker = wakers.get(map);
  if (waker === undefined) {
    waker = new Waker();
    wakers.set(map, waker);
  }
  return waker as Waker<T>;
}
