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
  #resolve: (() => void) | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #onTimeout = (): void => {
    this.#timer = undefined;
    this.wake();
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
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
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
      // A zero timeout still yields one macrotask so pending I/O can land;
      // timers cap at 2^31-1 ms and would fire at once beyond it.
      this.#timer = setTimeout(this.#onTimeout, Math.min(ms, MAX_TIMER_MS));
    });
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
