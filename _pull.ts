// Async producers for AsyncChat: an AsyncIterable or ReadableStream is read
// one chunk at a time, and only when the channel can send (no read-ahead).

import { ignore } from "./_quiet.ts";

/** A producer that hands over chunks asynchronously. */
export type AsyncSource =
  | AsyncIterable<Uint8Array | string>
  | ReadableStream<Uint8Array | string>;

/** One async producer's place in the producer fifo. */
export class Pull {
  readonly source: AsyncSource;
  /** True while a read is in flight. */
  pending = false;
  /** True once the source is exhausted, failed or cancelled. */
  done = false;
  /** What the source threw, if `failed`. */
  error: unknown = undefined;
  failed = false;
  #cancelled = false;
  #reader: ReadableStreamDefaultReader<Uint8Array | string> | null = null;
  #iterator: AsyncIterator<Uint8Array | string> | null = null;

  #landed: (pull: Pull, chunk: Uint8Array | string | undefined) => void;

  /**
   * Wraps `source`; `landed` gets each chunk read (`undefined` once the
   * source is done or failed).
   */
  constructor(
    source: AsyncSource,
    landed: (pull: Pull, chunk: Uint8Array | string | undefined) => void,
  ) {
    this.source = source;
    this.#landed = landed;
  }

  /** Reads one chunk. */
  start(): void {
    this.pending = true;
    let read: Promise<IteratorResult<Uint8Array | string>>;
    try {
      read = this.#read();
    } catch (error) {
      // A locked stream or a broken iterable: report it like a failed read.
      read = Promise.reject(error);
    }
    read.then(
      (result) => {
        this.pending = false;
        if (this.#cancelled) return;
        if (result.done) this.done = true;
        this.#landed(this, result.done ? undefined : result.value);
      },
      (error: unknown) => {
        this.pending = false;
        if (this.#cancelled) return;
        this.fail(error);
        this.#landed(this, undefined);
      },
    );
  }

  #read(): Promise<IteratorResult<Uint8Array | string>> {
    const source = this.source;
    if (source instanceof ReadableStream) {
      this.#reader ??= source.getReader();
      return this.#reader.read() as Promise<
        IteratorResult<Uint8Array | string>
      >;
    }
    this.#iterator ??= source[Symbol.asyncIterator]();
    return this.#iterator.next();
  }

  /** Records `error` as the source's outcome and stops it. */
  fail(error: unknown): void {
    this.cancel();
    this.failed = true;
    this.error = error;
  }

  /** Stops the source and releases what it holds (a file, a socket). */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.#cancelled = true;
    try {
      const source = this.source;
      if (source instanceof ReadableStream) {
        const pending = this.#reader?.cancel() ??
          (source.locked ? undefined : source.cancel());
        pending?.catch(ignore);
      } else {
        this.#iterator ??= source[Symbol.asyncIterator]();
        Promise.resolve(this.#iterator.return?.()).catch(ignore);
      }
    } catch {
      // a source that cannot be cancelled is simply dropped
    }
  }
}
