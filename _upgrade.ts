// STARTTLS's stream swap: the channel's stream is replaced by one built over
// it (TLS), in the order of the bytes on the wire. Bytes sent before the
// swap go out on the old stream first (a fence in the outbox), bytes sent
// after it on the new one; the read that was in flight, which cannot be
// withdrawn, is handed to the new stream as its first input. A dispatcher
// that queues bytes of its own ahead of the outbox (AsyncChat,
// DispatcherWithSend) holds the fence back until it has sent those (see
// kSendsAhead).

import type { FenceWaiter, Outbox } from "./_outbox.ts";
import { ignore } from "./_quiet.ts";
import type { Stream } from "./_stream.ts";
import type { Queued, Waker } from "./_waker.ts";

/**
 * The key of a dispatcher's method that says whether bytes it queued itself,
 * ahead of the channel's outbox, must go out before a STARTTLS fence; when
 * it says so, the dispatcher calls `Channel.fenceUpgrade()` once it has
 * handed them to `send()`.
 */
export const kSendsAhead: unique symbol = Symbol("asyncore.sendsAhead");

/**
 * Builds the stream that replaces the raw one in an upgrade: `first`
 * settles with the raw read that was in flight (its bytes, `null` at EOF),
 * or is `null` when none was.
 */
export type Wrap = (
  raw: Stream,
  first: Promise<Uint8Array | null> | null,
) => Promise<Stream>;

/** The channel as its upgrade sees it. */
export interface Upgrading extends Queued {
  stream: Stream | null;
  closed: boolean;
  error: unknown;
  waker: Waker | null;
  /**
   * The swap is over: `ok`, the new stream is in place and writing again,
   * so reads may resume; else it failed.
   */
  swapEnded(ok: boolean): void;
}

/** One stream swap in progress. */
export class Upgrade implements FenceWaiter {
  /** Settles once the new stream is in place. */
  readonly promise: Promise<void>;
  readonly #resolve: () => void;
  readonly #reject: (error: unknown) => void;
  readonly #channel: Upgrading;
  readonly #outbox: Outbox;
  readonly #wrap: Wrap;
  /** Where the raw read in flight delivers, if one was. */
  readonly #handoff: PromiseWithResolvers<Uint8Array | null> | null = null;

  /** `reading`: a raw read is in flight, to be handed to the new stream. */
  constructor(
    channel: Upgrading,
    outbox: Outbox,
    wrap: Wrap,
    reading: boolean,
  ) {
    this.#channel = channel;
    this.#outbox = outbox;
    this.#wrap = wrap;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.promise = promise;
    this.#resolve = resolve;
    this.#reject = reject;
    if (reading) {
      this.#handoff = Promise.withResolvers();
      // Its failure is the new stream's to report, if it ever asks.
      this.#handoff.promise.catch(ignore);
    }
  }

  /** Starts: the swap follows the bytes already queued. */
  start(): void {
    this.#outbox.fence(this);
  }

  /** Delivers the raw read that was in flight: its bytes, `null` at EOF. */
  handOff(bytes: Uint8Array | null, error: unknown): void {
    const handoff = this.#handoff!;
    if (error !== null) handoff.reject(error);
    else handoff.resolve(bytes);
  }

  /** The bytes sent before the upgrade are out: swaps streams. */
  async fenceReached(): Promise<void> {
    const channel = this.#channel;
    const outbox = this.#outbox;
    let stream: Stream;
    try {
      stream = await this.#wrap(
        channel.stream!,
        this.#handoff?.promise ?? null,
      );
    } catch (error) {
      channel.swapEnded(false);
      outbox.unfence();
      this.#reject(error);
      if (channel.closed) {
        outbox.release();
      } else {
        channel.error ??= error;
        channel.waker?.push(channel);
      }
      return;
    }
    outbox.unfence();
    channel.stream = stream;
    if (channel.closed) {
      this.cancel();
      outbox.release();
      return;
    }
    this.#resolve();
    outbox.resume();
    channel.swapEnded(true);
  }

  /** The channel closed first: what was sent for the new stream is dropped. */
  cancel(): void {
    this.#reject(
      new Deno.errors.BadResource("Cannot start TLS: the channel closed"),
    );
    // It must not go out in the clear.
    this.#outbox.dropFenced();
  }

  /** A write before the swap failed. */
  fail(error: unknown): void {
    this.#reject(error);
  }
}
