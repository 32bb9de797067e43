// The wake-up side of the loop: each socket map has one Waker. A channel whose
// operation settles pushes itself onto its map's queue and resolves the single
// promise the loop is waiting on, so a wait costs O(1) however many channels
// have operations in flight.

/** Something the waker can queue: a channel with a dedupe flag. */
export interface Queued {
  queued: boolean;
}

/** One map's ready queue and the loop's single wake-up promise. */
export class Waker<T extends Queued = Queued> {
  queue: T[] = [];
  /** An error a hook's rejected promise raised that must end `loop()`. */
  exit: unknown = undefined;
  /** When the loop last let the event loop turn (performance.now()). */
  turnedAt = 0;
  /** Passes since then that did not wait. */
  passesSinceTurn = 0;
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
    if (this.queue.length > 0 || this.exit !== undefined) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.#resolve = resolve;
      this.#deadline = performance.now() + ms;
      // A zero timeout still yields one macrotask so pending I/O can land.
      if (this.#timer === undefined || this.#timerAt > this.#deadline) {
        this.#arm(ms);
      }
    });
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
