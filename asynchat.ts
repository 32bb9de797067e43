/**
 * Python's `asynchat`: {@linkcode AsyncChat}, a {@linkcode Dispatcher} that
 * splits its input at a terminator (a byte string, a byte count, or none) and
 * sends queued data and producers in order; {@linkcode SimpleProducer}; and
 * {@linkcode find_prefix_at_end}.
 *
 * @example A line-based client
 * ```ts
 * import { AsyncChat } from "@asyncore/asyncore/asynchat";
 *
 * class LineClient extends AsyncChat {
 *   lines: string[] = [];
 *   constructor() {
 *     super();
 *     this.set_terminator("\r\n");
 *   }
 *   override collect_incoming_data(data: Uint8Array): void {
 *     this._collect_incoming_data(data);
 *   }
 *   override found_terminator(): void {
 *     this.lines.push(new TextDecoder().decode(this._get_data()));
 *   }
 * }
 * ```
 *
 * @module
 */

import {
  concat2,
  concatAll,
  EMPTY,
  encodeText,
  indexOfBytes,
} from "./_bytes.ts";
import { kChannel } from "./_channel.ts";
import { Fifo } from "./_fifo.ts";
import { isInstance, kindOf } from "./_errors.ts";
import { isThenable, settleError } from "./_routing.ts";
import { type AsyncSource, Pull } from "./_pull.ts";
import { ignore } from "./_quiet.ts";
import { kSendsAhead } from "./_upgrade.ts";
import {
  Dispatcher,
  type HookResult,
  type TlsOptions,
  type TlsServerOptions,
} from "./dispatcher.ts";

export type { AsyncSource };

/**
 * What {@linkcode AsyncChat.set_terminator} accepts: bytes (a string is
 * encoded), a byte count, or `null` for "no terminator".
 */
export type TerminatorInput = Uint8Array | string | number | null;

/** The terminator in effect: bytes, a count of bytes still expected, or `null`. */
export type Terminator = Uint8Array | number | null;

/**
 * Python's producer protocol: `more()` returns the next chunk, and an empty
 * one once the producer is exhausted. A string chunk is accepted only when
 * {@linkcode AsyncChat.use_encoding} is set.
 */
export interface Producer {
  /** The next chunk; empty when there is nothing more. */
  more(): Uint8Array | string;
}

/**
 * What {@linkcode AsyncChat.push_with_producer} accepts: a
 * {@linkcode Producer}, an async iterable or `ReadableStream` of chunks, or
 * bytes (a string only when {@linkcode AsyncChat.use_encoding} is set).
 */
export type ProducerSource = Producer | AsyncSource | Uint8Array | string;

/**
 * An entry of {@linkcode AsyncChat.producer_fifo}: bytes, a producer, or
 * `null` (the mark {@linkcode AsyncChat.close_when_done} leaves).
 */
export type ProducerFifoEntry = Uint8Array | Producer | AsyncSource | null;

function isProducer(entry: object): entry is Producer {
  return typeof (entry as Producer).more === "function";
}

// The longest proper prefix of `needle` that `haystack` (from `from` on)
// ends with.
function prefixAtEnd(
  haystack: Uint8Array,
  needle: Uint8Array,
  from: number,
): number {
  const end = haystack.length;
  let size = Math.min(needle.length - 1, end - from);
  for (; size > 0; size--) {
    let i = 0;
    const offset = end - size;
    while (i < size && haystack[offset + i] === needle[i]) i++;
    if (i === size) return size;
  }
  return 0;
}

/**
 * Python's `asynchat.async_chat`: a {@linkcode Dispatcher} for protocols made
 * of delimited records. Incoming bytes go to
 * {@linkcode AsyncChat.collect_incoming_data} until the terminator set with
 * {@linkcode AsyncChat.set_terminator} is seen, then
 * {@linkcode AsyncChat.found_terminator} runs; outgoing data queued with
 * {@linkcode AsyncChat.push} and {@linkcode AsyncChat.push_with_producer} is
 * sent in order, only as fast as the connection takes it.
 *
 * Beyond Python, `found_terminator()` may return a promise: the rest of the
 * input waits (and reading pauses) until it settles, so records are still
 * handled one at a time and in order.
 *
 * @example An echo of lines over loopback
 * ```ts
 * import { AsyncChat, close_all, Dispatcher, loop } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * class LineEcho extends AsyncChat {
 *   constructor(conn: Deno.Conn) {
 *     super(conn);
 *     this.set_terminator("\n");
 *   }
 *   override collect_incoming_data(data: Uint8Array): void {
 *     this._collect_incoming_data(data);
 *   }
 *   override found_terminator(): void {
 *     this.push(this._get_data());
 *     this.push(new TextEncoder().encode("\n"));
 *   }
 * }
 *
 * class Server extends Dispatcher {
 *   override handle_accepted(conn: Deno.Conn): void {
 *     new LineEcho(conn);
 *   }
 * }
 *
 * class Client extends AsyncChat {
 *   lines: string[] = [];
 *   override handle_connect(): void {
 *     this.set_terminator("\n");
 *     this.push(new TextEncoder().encode("hello\nworld\n"));
 *   }
 *   override collect_incoming_data(data: Uint8Array): void {
 *     this._collect_incoming_data(data);
 *   }
 *   override found_terminator(): void {
 *     this.lines.push(new TextDecoder().decode(this._get_data()));
 *     if (this.lines.length === 2) close_all();
 *   }
 * }
 *
 * const server = new Server();
 * server.create_socket();
 * server.bind(["127.0.0.1", 0]);
 * server.listen(5);
 * const client = new Client();
 * client.create_socket();
 * client.connect(server.getsockname());
 * await loop({ timeout: 5 });
 * assert.deepEqual(client.lines, ["hello", "world"]);
 * ```
 */
export class AsyncChat extends Dispatcher {
  /**
   * The most bytes one `handle_read()` takes from the connection.
   *
   * @default {65536}
   */
  ac_in_buffer_size = 65536;
  /**
   * The largest piece handed to `send()` at once; `push()` splits longer
   * data into pieces of this size.
   *
   * @default {65536}
   */
  ac_out_buffer_size = 65536;
  /**
   * Encode string terminators and string chunks from producers with
   * {@linkcode AsyncChat.encoding} (Python's `use_encoding`). Off by default:
   * strings where bytes are expected are usually a bug.
   *
   * @default {false}
   */
  use_encoding = false;
  /**
   * The encoding used when {@linkcode AsyncChat.use_encoding} is set:
   * `"latin-1"`, `"utf-8"` or `"ascii"`.
   *
   * @default {"latin-1"}
   */
  encoding = "latin-1";
  /**
   * Chunks gathered by {@linkcode AsyncChat._collect_incoming_data}, joined
   * and cleared by {@linkcode AsyncChat._get_data}.
   */
  incoming: Uint8Array[] = [];
  /**
   * The terminator in effect (see {@linkcode AsyncChat.set_terminator}). A
   * numeric terminator counts down as bytes arrive.
   *
   * @default {null}
   */
  terminator: Terminator = null;
  // `#front` holds the chunk the head producer handed over (Python's
  // appendleft); `#pull` reads the head async producer.
  #front: Uint8Array | null = null;
  #queue = new Fifo<ProducerFifoEntry>();
  #pull: Pull | null = null;
  // Bytes in the fifo and #front, for bufferedAmount.
  #queuedBytes = 0;
  // Entries of the fifo queued before a start_tls() call and not yet sent:
  // the upgrade's fence waits for them (0: nothing waits).
  #aheadOfTls = 0;
  // True while an async found_terminator() runs: reading pauses.
  #paused = false;
  // Input not yet handed over: `#in` from `#at` on. An offset instead of a
  // new view per record keeps splitting many short records cheap.
  #in: Uint8Array = EMPTY;
  #at = 0;

  /**
   * Input received but not yet handed to `collect_incoming_data()`: between
   * reads, at most the start of a terminator that may be completed later.
   *
   * @returns The unprocessed input.
   */
  get ac_in_buffer(): Uint8Array {
    return this.#at === 0 ? this.#in : this.#in.subarray(this.#at);
  }

  set ac_in_buffer(data: Uint8Array) {
    this.#in = data;
    this.#at = 0;
  }

  /**
   * Receives the data of the current record, in pieces. Override it; the
   * pieces are yours to keep (they are never reused).
   *
   * @param _data The next piece of the record.
   * @throws {Error} Always, unless overridden.
   */
  collect_incoming_data(_data: Uint8Array): void {
    throw new Error(
      "Cannot collect incoming data: collect_incoming_data() must be overridden in a subclass",
    );
  }

  /**
   * Appends `data` to {@linkcode AsyncChat.incoming}: a ready-made
   * `collect_incoming_data()` to call from an override.
   *
   * @example Gather pieces and join them
   * ```ts
   * import { AsyncChat } from "@asyncore/asyncore";
   * import assert from "node:assert/strict";
   *
   * const chat = new AsyncChat();
   * chat._collect_incoming_data(new Uint8Array([1, 2]));
   * chat._collect_incoming_data(new Uint8Array([3]));
   * assert.deepEqual(chat._get_data(), new Uint8Array([1, 2, 3]));
   * ```
   *
   * @param data A piece of the current record.
   */
  _collect_incoming_data(data: Uint8Array): void {
    this.incoming.push(data);
  }

  /**
   * Joins and clears {@linkcode AsyncChat.incoming}.
   *
   * @returns The bytes gathered since the last call.
   */
  _get_data(): Uint8Array {
    const data = concatAll(this.incoming);
    this.incoming.length = 0;
    return data;
  }

  /**
   * Called when the terminator is seen (or a numeric terminator's bytes have
   * all arrived). Override it; it may call `set_terminator()` to change how
   * the rest of the input is split, and may return a promise (reading pauses
   * until it settles).
   *
   * @returns Nothing, or a promise to wait for.
   * @throws {Error} Always, unless overridden.
   */
  found_terminator(): HookResult {
    throw new Error(
      "Cannot handle terminator: found_terminator() must be overridden in a subclass",
    );
  }

  /**
   * Sets the input delimiter: bytes, a string (encoded with
   * {@linkcode AsyncChat.encoding} when {@linkcode AsyncChat.use_encoding} is
   * set, as UTF-8 otherwise), a number of bytes to collect, or `null` to
   * collect everything.
   *
   * @example Switch from lines to a fixed-size body
   * ```ts
   * import { AsyncChat } from "@asyncore/asyncore";
   * import assert from "node:assert/strict";
   *
   * const chat = new AsyncChat();
   * chat.set_terminator("\r\n");
   * assert.deepEqual(chat.get_terminator(), new Uint8Array([13, 10]));
   * chat.set_terminator(512);
   * assert.equal(chat.get_terminator(), 512);
   * assert.throws(() => chat.set_terminator(-1), RangeError);
   * ```
   *
   * @param term The new terminator.
   * @throws {RangeError} If `term` is a negative or non-integer number, or a
   * string the encoding cannot hold.
   * @throws {TypeError} If `term` has another type.
   */
  set_terminator(term: TerminatorInput): void {
    if (term === null || term instanceof Uint8Array) {
      this.terminator = term;
    } else if (typeof term === "string") {
      this.terminator = encodeText(
        term,
        this.use_encoding ? this.encoding : "utf-8",
        "set terminator",
      );
    } else if (typeof term === "number") {
      if (!Number.isInteger(term) || term < 0) {
        throw new RangeError(
          `Cannot set terminator: term "${term}" is not a non-negative integer`,
        );
      }
      this.terminator = term;
    } else {
      throw new TypeError(
        `Cannot set terminator: term must be a Uint8Array, string, number or null, got ${
          kindOf(term)
        }`,
      );
    }
  }

  /**
   * The terminator in effect.
   *
   * @returns Bytes, the number of bytes still expected, or `null`.
   */
  get_terminator(): Terminator {
    return this.terminator;
  }

  /**
   * Reads what arrived and splits it at the terminator, calling
   * `collect_incoming_data()` and `found_terminator()`. Only the new bytes
   * (plus a terminator's length of overlap) are searched, so a long record
   * costs linear time however it is split across reads.
   *
   * @returns Nothing, or a promise while an async `found_terminator()` runs.
   */
  override handle_read(): HookResult {
    if (this.#paused) return;
    let data: Uint8Array;
    try {
      data = this.recv(this.ac_in_buffer_size);
    } catch (error) {
      if (isInstance(error, Deno.errors.WouldBlock)) return;
      // As Python does; watched as handle_error()'s own result, so its
      // rejection ends loop() instead of coming back to handle_error().
      settleError(this, this.handle_error(error));
      return;
    }
    if (data.length === 0) return;
    const head = this.ac_in_buffer;
    if (head.length === 0) {
      this.ac_in_buffer = data;
      return this.#split();
    }
    const term = this.get_terminator();
    if (!(term instanceof Uint8Array) || head.length >= term.length) {
      // Only when the terminator changed between reads: rare, so just join.
      this.ac_in_buffer = concat2(head, data);
      return this.#split();
    }
    // `head` is the start of a terminator: look for its end in a small window
    // instead of joining `head` to the whole of `data`.
    const reach = term.length - 1;
    if (data.length <= reach) {
      this.ac_in_buffer = concat2(head, data);
      return this.#split();
    }
    const window = concat2(head, data.subarray(0, reach));
    const found = indexOfBytes(window, term, 0);
    this.ac_in_buffer = data;
    if (found === -1) {
      // No terminator starts inside `head`: it is ordinary data.
      this.collect_incoming_data(head);
      return this.#split();
    }
    this.#at = found + term.length - head.length;
    if (found > 0) this.collect_incoming_data(window.subarray(0, found));
    const result = this.found_terminator();
    if (isThenable(result)) return this.#pause(result);
    return this.#split();
  }

  // Python's handle_read loop. The state is updated before each hook runs,
  // so a hook sees the input that is left and may replace it
  // (discard_buffers()) or change the terminator.
  #split(): HookResult {
    while (true) {
      const buffer = this.#in;
      const at = this.#at;
      const size = buffer.length - at;
      if (size <= 0) {
        // Let go of the read buffer.
        this.#in = EMPTY;
        this.#at = 0;
        return;
      }
      const term = this.get_terminator();
      if (term === null || term === 0 || (term as Uint8Array).length === 0) {
        // No terminator (Python's `not terminator`): everything is data.
        this.#in = EMPTY;
        this.#at = 0;
        this.collect_incoming_data(at === 0 ? buffer : buffer.subarray(at));
      } else if (typeof term === "number") {
        if (size < term) {
          this.#in = EMPTY;
          this.#at = 0;
          this.terminator = term - size;
          this.collect_incoming_data(at === 0 ? buffer : buffer.subarray(at));
        } else {
          this.#at = at + term;
          this.terminator = 0;
          this.collect_incoming_data(buffer.subarray(at, at + term));
          const result = this.found_terminator();
          if (isThenable(result)) return this.#pause(result);
        }
      } else {
        const found = indexOfBytes(buffer, term, at);
        if (found !== -1) {
          this.#at = found + term.length;
          // An empty record's data is not reported (as in Python).
          if (found > at) {
            this.collect_incoming_data(buffer.subarray(at, found));
          }
          const result = this.found_terminator();
          if (isThenable(result)) return this.#pause(result);
        } else {
          const cut = buffer.length - prefixAtEnd(buffer, term, at);
          // Keep a copy of the partial terminator: a view would pin the
          // whole read buffer.
          this.#in = cut === buffer.length ? EMPTY : buffer.slice(cut);
          this.#at = 0;
          if (cut > at) {
            this.collect_incoming_data(
              at === 0 && cut === buffer.length
                ? buffer
                : buffer.subarray(at, cut),
            );
          }
          if (cut < buffer.length) return;
        }
      }
    }
  }

  // Waits for an async found_terminator(), then goes on with the input that
  // was left; reading pauses meanwhile so records stay in order.
  async #pause(result: PromiseLike<void>): Promise<void> {
    this.#paused = true;
    try {
      await result;
    } finally {
      this.#paused = false;
      this.#wake();
    }
    // A channel closed meanwhile gets no more records, as a closed socket's
    // input is gone in Python.
    if (!this.connected) return;
    return this.#split();
  }

  // Makes a waiting loop scan this channel again.
  #wake(): void {
    const channel = this[kChannel];
    channel?.waker?.push(channel);
  }

  /**
   * Sends queued data: calls {@linkcode AsyncChat.initiate_send}.
   *
   * @returns What `initiate_send()` returned.
   */
  override handle_write(): HookResult {
    return this.initiate_send();
  }

  /**
   * Closes the channel, as Python's `async_chat` does.
   *
   * @returns Nothing.
   */
  override handle_close(): HookResult {
    this.close();
  }

  /**
   * Queues `data` to be sent after everything queued before it, and starts
   * sending. The bytes are copied when they cannot be sent at once, so the
   * caller may reuse its array.
   *
   * @example Queue a reply
   * ```ts
   * import { AsyncChat } from "@asyncore/asyncore";
   * import assert from "node:assert/strict";
   *
   * const chat = new AsyncChat();
   * chat.push(new TextEncoder().encode("220 ready\r\n"));
   * assert.equal(chat.producer_fifo.length, 1);
   * assert.throws(() => chat.push("text" as never), TypeError);
   * ```
   *
   * @param data The bytes to send.
   * @throws {TypeError} If `data` is not a `Uint8Array`.
   */
  push(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot push: data must be a Uint8Array, got ${kindOf(data)}`,
      );
    }
    // Closed: nothing would ever send it (a broadcast may still hold us).
    if (data.length === 0 || this[kChannel]?.closed) return;
    let rest = data;
    if (this.#isEmpty() && this.connected) {
      // Nothing queued: hand the bytes straight to send(), no copy.
      rest = this.#sendFrom(data);
      if (rest.length === 0) return;
    }
    const own = rest.slice();
    this.#queuedBytes += own.length;
    const size = this.ac_out_buffer_size;
    if (own.length <= size) {
      this.#queue.push(own);
    } else {
      for (let i = 0; i < own.length; i += size) {
        this.#queue.push(own.subarray(i, i + size));
      }
    }
    this.#drain(false);
  }

  /**
   * Queues a producer after everything queued before it. A producer is an
   * object whose `more()` returns the next chunk (empty when done), or,
   * beyond Python, an async iterable or `ReadableStream` of chunks. Chunks
   * are only asked for when the connection can take them, so a large or
   * endless producer never piles up in memory.
   *
   * @example Stream a file
   * ```ts ignore
   * import { AsyncChat } from "@asyncore/asyncore";
   *
   * class FileSender extends AsyncChat {
   *   override async handle_connect(): Promise<void> {
   *     const file = await Deno.open("data.bin");
   *     this.push_with_producer(file.readable);
   *     this.close_when_done();
   *   }
   * }
   * ```
   *
   * @param producer A {@linkcode Producer}, an async iterable or stream of
   * chunks, or bytes.
   * @throws {TypeError} If `producer` is none of these, or a string while
   * {@linkcode AsyncChat.use_encoding} is off.
   */
  push_with_producer(producer: ProducerSource): void {
    if (producer instanceof Uint8Array) return this.push(producer);
    if (typeof producer === "string") {
      return this.push(this.#toBytes(producer, "push with producer"));
    }
    if (
      producer === null || typeof producer !== "object" ||
      !(isProducer(producer) || producer instanceof ReadableStream ||
        typeof (producer as AsyncIterable<unknown>)[Symbol.asyncIterator] ===
          "function")
    ) {
      throw new TypeError(
        `Cannot push with producer: producer must have a more() method, be an async iterable or a ReadableStream, got ${
          kindOf(producer)
        }`,
      );
    }
    this.#queue.push(producer);
    this.#drain(false);
  }

  /**
   * Whether the loop should read: `true`, except while an async
   * `found_terminator()` runs.
   *
   * @returns Whether to read.
   */
  override readable(): boolean {
    return !this.#paused;
  }

  /**
   * Whether there is something to send (or a connect to finish). False while
   * an async producer is fetching its next chunk; its arrival wakes the loop.
   *
   * @returns Whether `handle_write()` has work.
   */
  override writable(): boolean {
    if (!this.connected || this.#front !== null) return true;
    if (this.#queue.length === 0) return false;
    return this.#pull === null || !this.#pull.pending;
  }

  /**
   * Closes the channel once everything queued so far is sent (Python puts a
   * `None` in the fifo). Bytes handed to `send()` are still delivered.
   *
   * @example Say goodbye and close
   * ```ts
   * import { AsyncChat } from "@asyncore/asyncore";
   * import assert from "node:assert/strict";
   *
   * const chat = new AsyncChat();
   * chat.push(new TextEncoder().encode("221 bye\r\n"));
   * chat.close_when_done();
   * assert.equal(chat.producer_fifo.at(-1), null);
   * ```
   */
  close_when_done(): void {
    this.#queue.push(null);
  }

  /**
   * Sends from the head of the producer fifo until the connection stops
   * taking bytes or the fifo is empty; reaching the
   * {@linkcode AsyncChat.close_when_done} mark calls `handle_close()`.
   *
   * @returns What `handle_close()` returned, when the mark was reached.
   * @throws {Error} What `send()` or a producer threw.
   */
  initiate_send(): HookResult {
    return this.#drain(true);
  }

  // The body of initiate_send(). From push() (`atHook` false) it stops at the
  // close mark and at a failed producer and leaves them to handle_write(),
  // whose errors reach handle_error().
  #drain(atHook: boolean): HookResult {
    while (this.connected) {
      const front = this.#front;
      if (front !== null) {
        const rest = this.#sendFrom(front);
        this.#queuedBytes -= front.length - rest.length;
        this.#front = rest.length === 0 ? null : rest;
        if (rest.length > 0) return;
        continue;
      }
      const first = this.#queue.peek();
      if (first === undefined) return;
      if (first === null) {
        if (!atHook) return;
        this.#shift();
        return this.handle_close();
      }
      if (first instanceof Uint8Array) {
        const rest = this.#sendFrom(first);
        this.#queuedBytes -= first.length - rest.length;
        if (rest.length > 0) {
          this.#queue.replaceFirst(rest);
          return;
        }
        this.#shift();
      } else if (isProducer(first)) {
        const chunk = this.#toBytes(first.more(), "send");
        if (chunk.length === 0) this.#shift();
        else this.#setFront(chunk);
      } else {
        const pull = this.#pull ??= new Pull(
          first,
          (pull, chunk) => this.#landed(pull, chunk),
        );
        if (pull.pending) return;
        if (!pull.done) {
          pull.start();
          return;
        }
        if (pull.failed && !atHook) return;
        this.#pull = null;
        this.#shift();
        if (pull.failed) throw pull.error;
      }
    }
  }

  // Hands `chunk` to send() in pieces of ac_out_buffer_size until send()
  // takes less than offered; returns what is left.
  #sendFrom(chunk: Uint8Array): Uint8Array {
    const size = this.ac_out_buffer_size;
    while (chunk.length > 0) {
      const piece = chunk.length > size ? chunk.subarray(0, size) : chunk;
      const sent = this.send(piece);
      if (sent > 0) chunk = chunk.subarray(sent);
      if (sent < piece.length) break;
    }
    return chunk;
  }

  // An async producer's chunk arrived (or it ended): put the chunk at the
  // head and wake the loop, which will find the channel writable again.
  #landed(pull: Pull, chunk: Uint8Array | string | undefined): void {
    if (chunk !== undefined) {
      try {
        const bytes = this.#toBytes(chunk, "send");
        if (bytes.length > 0) this.#setFront(bytes);
      } catch (error) {
        pull.fail(error);
      }
    }
    this.#wake();
  }

  #setFront(chunk: Uint8Array): void {
    this.#front = chunk;
    this.#queuedBytes += chunk.length;
  }

  #toBytes(value: unknown, action: string): Uint8Array {
    if (value instanceof Uint8Array) return value;
    if (typeof value === "string" && this.use_encoding) {
      return encodeText(value, this.encoding, action);
    }
    throw new TypeError(
      `Cannot ${action}: a producer chunk must be a Uint8Array${
        this.use_encoding ? " or a string" : ""
      }, got ${kindOf(value)}`,
    );
  }

  #isEmpty(): boolean {
    return this.#front === null && this.#queue.length === 0;
  }

  #shift(): void {
    if (this.#aheadOfTls > 0 && --this.#aheadOfTls === 0) {
      this[kChannel]?.fenceUpgrade();
    }
    this.#queue.shift();
  }

  /**
   * Bytes pushed and not yet written: those queued here (including a
   * producer's current chunk, not what it has yet to produce) plus the
   * connection's outbox. O(1).
   *
   * @example Drop a peer that falls too far behind
   * ```ts
   * import { AsyncChat } from "@asyncore/asyncore";
   * import assert from "node:assert/strict";
   *
   * const chat = new AsyncChat();
   * chat.push(new Uint8Array(100));
   * assert.equal(chat.bufferedAmount, 100);
   * if (chat.bufferedAmount > 64) chat.discard_buffers();
   * assert.equal(chat.bufferedAmount, 0);
   * ```
   *
   * @returns The byte count.
   */
  override get bufferedAmount(): number {
    return super.bufferedAmount + this.#queuedBytes;
  }

  /**
   * What is queued to send, head first: bytes, producers, and `null` for a
   * {@linkcode AsyncChat.close_when_done} mark (Python's deque). A producer
   * stays at the head until it is exhausted; the chunk it handed over last
   * is not listed. The array is live but only valid until the next send:
   * read the property again rather than keeping it, and do not modify it.
   *
   * @returns The queued entries.
   */
  get producer_fifo(): readonly ProducerFifoEntry[] {
    return this.#queue.entries();
  }

  /**
   * Drops all buffered input and everything queued to send (Python keeps it
   * for emergencies). Async producers are cancelled.
   *
   * @example Start over
   * ```ts
   * import { AsyncChat } from "@asyncore/asyncore";
   * import assert from "node:assert/strict";
   *
   * const chat = new AsyncChat();
   * chat.push(new Uint8Array(10));
   * chat.discard_buffers();
   * assert.equal(chat.producer_fifo.length, 0);
   * ```
   */
  discard_buffers(): void {
    this.ac_in_buffer = EMPTY;
    this.incoming.length = 0;
    this.#cancelSources();
    this.#front = null;
    this.#queue.clear();
    this.#pull = null;
    this.#queuedBytes = 0;
    if (this.#aheadOfTls > 0) {
      // Nothing queued is left to send before the upgrade.
      this.#aheadOfTls = 0;
      this[kChannel]?.fenceUpgrade();
    }
  }

  /**
   * {@linkcode Dispatcher.start_tls}, which also drops the input received
   * and not yet handed to `collect_incoming_data()`: commands pipelined
   * behind STARTTLS arrived in the clear.
   *
   * Everything pushed before the call (bytes and producers, async ones
   * included, in order) goes out in the clear first, even while it waits in
   * {@linkcode AsyncChat.producer_fifo} (pushed before the connection was up,
   * or while the outbox was full); everything pushed after it goes out
   * encrypted. The handshake starts once the first part is written. Bytes
   * handed to `send()` directly bypass the fifo, and so go out in the clear
   * while it still holds bytes pushed before the call.
   *
   * @example Upgrade once the peer agrees
   * ```ts ignore
   * import { AsyncChat } from "@asyncore/asyncore";
   *
   * class Client extends AsyncChat {
   *   override async found_terminator(): Promise<void> {
   *     if (new TextDecoder().decode(this._get_data()).startsWith("220")) {
   *       await this.start_tls({ caCerts: [Deno.readTextFileSync("ca.pem")] });
   *       this.push(new TextEncoder().encode("EHLO me\r\n"));
   *     }
   *   }
   * }
   * ```
   *
   * @param options The client's or the server's TLS settings.
   * @returns A promise that settles once the handshake is done.
   * @throws {TypeError} If the TLS settings are malformed.
   * @throws {Error} If there is no connection.
   */
  override start_tls(
    options: TlsOptions | TlsServerOptions = {},
  ): Promise<void> {
    const ahead = this.#queue.length;
    const upgraded = super.start_tls(options);
    this.ac_in_buffer = EMPTY;
    // A second call while this one waits is refused (an upgrade is under
    // way): the count stays the first one's.
    if (this.#aheadOfTls === 0) this.#aheadOfTls = ahead;
    return upgraded;
  }

  /**
   * @ignore Whether the fifo holds entries that must go out before a
   * STARTTLS fence; internal.
   */
  override [kSendsAhead](): boolean {
    return this.#queue.length > 0;
  }

  /**
   * Closes the channel (bytes already taken by `send()` are still delivered)
   * and cancels async producers, releasing what they hold.
   */
  override close(): void {
    super.close();
    this.#cancelSources();
    // The upgrade, if one waited, is cancelled with the channel.
    this.#aheadOfTls = 0;
  }

  // Cancels every async producer still queued, started or not.
  #cancelSources(): void {
    const pull = this.#pull;
    pull?.cancel();
    const queue = this.#queue.entries();
    for (let i = pull === null ? 0 : 1; i < queue.length; i++) {
      const entry = queue[i]!;
      if (
        entry !== null && !(entry instanceof Uint8Array) && !isProducer(entry)
      ) {
        new Pull(entry, ignore).cancel();
      }
    }
  }
}

/**
 * Python's `asynchat.simple_producer`: hands out `data` in pieces of at most
 * `buffer_size` bytes.
 *
 * @example Split bytes into pieces
 * ```ts
 * import { SimpleProducer } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * const producer = new SimpleProducer(new Uint8Array(10), 4);
 * assert.equal(producer.more().length, 4);
 * assert.equal(producer.more().length, 4);
 * assert.equal(producer.more().length, 2);
 * assert.equal(producer.more().length, 0);
 * ```
 */
export class SimpleProducer implements Producer {
  /** What is left to hand out. */
  data: Uint8Array;
  /** The largest piece `more()` returns. */
  buffer_size: number;

  /**
   * Wraps `data` (not copied: leave it unchanged while the producer runs).
   *
   * @param data The bytes to produce.
   * @param buffer_size The largest piece `more()` returns. Default 512.
   * @throws {TypeError} If `data` is not a `Uint8Array`.
   * @throws {RangeError} If `buffer_size` is not a positive integer.
   */
  constructor(data: Uint8Array, buffer_size?: number) {
    buffer_size ??= 512;
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot create producer: data must be a Uint8Array, got ${
          kindOf(data)
        }`,
      );
    }
    if (!Number.isInteger(buffer_size) || buffer_size <= 0) {
      throw new RangeError(
        `Cannot create producer: buffer_size "${buffer_size}" is not a positive integer`,
      );
    }
    this.data = data;
    this.buffer_size = buffer_size;
  }

  /**
   * The next piece.
   *
   * @returns Up to `buffer_size` bytes; empty once everything was handed out.
   */
  more(): Uint8Array {
    const data = this.data;
    if (data.length > this.buffer_size) {
      this.data = data.subarray(this.buffer_size);
      return data.subarray(0, this.buffer_size);
    }
    this.data = EMPTY;
    return data;
  }
}

/**
 * How much of the start of `needle` the end of `haystack` holds: the length
 * of the longest proper prefix of `needle` that `haystack` ends with, or 0.
 * `AsyncChat` uses it to keep a terminator that is split across reads.
 *
 * @example Python's own cases
 * ```ts
 * import { find_prefix_at_end } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * assert.equal(find_prefix_at_end("qwerty\r", "\r\n"), 1);
 * assert.equal(find_prefix_at_end("qwertydkjf", "\r\n"), 0);
 * ```
 *
 * @param haystack The data received so far.
 * @param needle The terminator.
 * @returns The number of bytes (or characters) matched.
 * @throws {TypeError} If the arguments are not both strings or both
 * `Uint8Array`s.
 */
export function find_prefix_at_end(
  haystack: Uint8Array | string,
  needle: Uint8Array | string,
): number {
  if (haystack instanceof Uint8Array && needle instanceof Uint8Array) {
    return prefixAtEnd(haystack, needle, 0);
  }
  if (typeof haystack === "string" && typeof needle === "string") {
    for (let size = needle.length - 1; size > 0; size--) {
      if (haystack.endsWith(needle.slice(0, size))) return size;
    }
    return 0;
  }
  throw new TypeError(
    `Cannot find prefix at end: haystack and needle must both be strings or both Uint8Arrays, got ${
      kindOf(haystack)
    } and ${kindOf(needle)}`,
  );
}
