// A first-in, first-out queue on an array and a head index. Shifting a big
// array is O(n) in V8, so entries are taken by moving the head; but a head
// alone keeps a slot for every entry ever pushed while the queue never runs
// empty (a server under steady load: its admission queue grew by a slot per
// message, ~50 MB of RSS in 20 s at 1000 connections). The taken slots are
// dropped once they are half the array, which keeps the array under twice
// the entries (plus COMPACT_AT) at an amortized O(1) per entry.

/** Taken slots below which the array is not compacted: small queues skip it. */
export const COMPACT_AT = 1024;

/** A FIFO queue whose memory follows what it holds, not what it has held. */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  /** Entries queued. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Array slots held, the taken ones not yet dropped included. */
  get slots(): number {
    return this.#items.length;
  }

  /** Appends `item`. */
  push(item: T): void {
    this.#items.push(item);
  }

  /** The first entry, or `undefined` when the queue is empty. */
  peek(): T | undefined {
    return this.#head < this.#items.length
      ? this.#items[this.#head]
      : undefined;
  }

  /** Replaces the first entry (the queue must not be empty). */
  replaceFirst(item: T): void {
    this.#items[this.#head] = item;
  }

  /** Takes the first entry, or `undefined` when the queue is empty. */
  shift(): T | undefined {
    const items = this.#items;
    const head = this.#head;
    if (head === items.length) return undefined;
    const item = items[head];
    // The taken slot lets go of its entry at once.
    items[head] = undefined;
    this.#head = head + 1;
    if (this.#head === items.length) this.clear();
    else if (this.#head >= COMPACT_AT && this.#head * 2 >= items.length) {
      this.#compact();
    }
    return item;
  }

  /** Empties the queue. */
  clear(): void {
    this.#items.length = 0;
    this.#head = 0;
  }

  /**
   * The entries, first to last, as the queue's own array: valid until the
   * next change to the queue.
   */
  entries(): readonly T[] {
    if (this.#head > 0) this.#compact();
    return this.#items as T[];
  }

  #compact(): void {
    const items = this.#items;
    items.copyWithin(0, this.#head);
    items.length -= this.#head;
    this.#head = 0;
  }
}
