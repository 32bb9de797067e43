// FileWrapper: makes a file, standard input/output or a pipe look like a
// connection to the loop (read(p)/write(p)/close()), as Python's
// asyncore.file_wrapper makes a descriptor look like a socket.

import { nextFileno } from "./_fileno.ts";
import { closeQuietly, ignore } from "./_quiet.ts";

/** A Deno reader/writer: `Deno.FsFile`, `Deno.stdin`, `Deno.stdout`, … */
export interface FileHandle {
  /** Reads into `p`; resolves to the count, or `null` at end of file. */
  read?(p: Uint8Array): Promise<number | null>;
  /** Writes from `p`; resolves to the count written. */
  write?(p: Uint8Array): Promise<number>;
  /** Releases the file. */
  close?(): void;
}

/** A pair of pipes, such as a `Deno.ChildProcess`'s `stdout` and `stdin`. */
export interface PipePair {
  /** Where reads come from (e.g. `child.stdout`). */
  readable?: ReadableStream<Uint8Array> | null;
  /** Where writes go (e.g. `child.stdin`). */
  writable?: WritableStream<Uint8Array> | null;
}

/** Anything {@linkcode FileWrapper} can wrap. */
export type FileSource =
  | FileHandle
  | ReadableStream<Uint8Array>
  | WritableStream<Uint8Array>
  | PipePair;

/**
 * Python's `asyncore.file_wrapper`: gives a file, standard input or a pipe the
 * socket-like face a {@linkcode FileDispatcher} needs. Closing the wrapper
 * closes what it wraps.
 *
 * @example Read a file through the wrapper
 * ```ts
 * import { FileWrapper } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "It's not dead, it's sleeping!");
 * using wrapper = new FileWrapper(await Deno.open(path));
 * const data = await wrapper.recv(13);
 * assert.equal(new TextDecoder().decode(data), "It's not dead");
 * await Deno.remove(path);
 * ```
 */
export class FileWrapper {
  #handle: FileHandle | null = null;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #leftover: Uint8Array | null = null;
  #fd: number = nextFileno();

  /**
   * Wraps `file`.
   *
   * @param file A `Deno.FsFile`, `Deno.stdin`/`stdout`, a readable or
   * writable stream, or a `{ readable, writable }` pair of pipes.
   * @throws {TypeError} If `file` is none of those.
   */
  constructor(file: FileSource) {
    if (file instanceof ReadableStream) {
      this.#reader = file.getReader();
    } else if (file instanceof WritableStream) {
      this.#writer = file.getWriter();
    } else if (
      file !== null && typeof file === "object" &&
      (typeof (file as FileHandle).read === "function" ||
        typeof (file as FileHandle).write === "function")
    ) {
      this.#handle = file as FileHandle;
    } else if (
      file !== null && typeof file === "object" &&
      ("readable" in file || "writable" in file)
    ) {
      const pipes = file as PipePair;
      this.#reader = pipes.readable?.getReader() ?? null;
      this.#writer = pipes.writable?.getWriter() ?? null;
    } else {
      throw new TypeError(
        "Cannot wrap file: expected a Deno.FsFile, a stream or { readable, writable }",
      );
    }
  }

  /**
   * Reads into `p`, as `Deno.FsFile.read` does.
   *
   * @param p The buffer to fill.
   * @returns The number of bytes read, or `null` at end of file.
   * @throws {Deno.errors.BadResource} If closed or not readable.
   */
  async read(p: Uint8Array): Promise<number | null> {
    const handle = this.#handle;
    if (handle?.read) return await handle.read(p);
    const reader = this.#reader;
    if (reader === null) throw this.#unable("read");
    let chunk = this.#leftover;
    this.#leftover = null;
    while (chunk === null || chunk.length === 0) {
      const next = await reader.read();
      if (next.done) return null;
      chunk = next.value;
    }
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n < chunk.length) this.#leftover = chunk.subarray(n);
    return n;
  }

  /**
   * Writes `p`, as `Deno.FsFile.write` does.
   *
   * @param p The bytes to write.
   * @returns The number of bytes written.
   * @throws {Deno.errors.BadResource} If closed or not writable.
   */
  async write(p: Uint8Array): Promise<number> {
    const handle = this.#handle;
    if (handle?.write) return await handle.write(p);
    const writer = this.#writer;
    if (writer === null) throw this.#unable("write");
    await writer.write(p);
    return p.length;
  }

  /**
   * Python's `recv(size)`: up to `size` bytes, empty at end of file.
   *
   * @param size The most bytes to return.
   * @returns The bytes read.
   * @throws {RangeError} If `size` is not a positive integer.
   */
  async recv(size: number): Promise<Uint8Array> {
    if (!Number.isInteger(size) || size <= 0) {
      throw new RangeError(
        `Cannot recv: size "${size}" is not a positive integer`,
      );
    }
    const buf = new Uint8Array(size);
    const n = await this.read(buf);
    return buf.subarray(0, n ?? 0);
  }

  /**
   * Python's `send(data)`: writes `data`.
   *
   * @param data The bytes to write.
   * @returns The number of bytes written.
   * @throws {TypeError} If `data` is not a `Uint8Array`.
   */
  send(data: Uint8Array): Promise<number> {
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(
        new TypeError("Cannot send: data must be a Uint8Array"),
      );
    }
    return this.write(data);
  }

  /**
   * This wrapper's number (Python's duplicated descriptor), `-1` once closed.
   *
   * @returns The number.
   */
  fileno(): number {
    return this.#fd;
  }

  /** Closes what is wrapped; safe to call twice. */
  close(): void {
    if (this.#fd < 0) return;
    this.#fd = -1;
    const handle = this.#handle;
    this.#handle = null;
    if (typeof handle?.close === "function") {
      closeQuietly(handle as { close(): void });
    }
    this.#reader?.cancel().catch(ignore);
    this.#reader = null;
    this.#writer?.close().catch(ignore);
    this.#writer = null;
    this.#leftover = null;
  }

  /** Closes the wrapper at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }

  #unable(action: string): Error {
    return new Deno.errors.BadResource(
      this.#fd < 0
        ? `Cannot ${action}: the file is closed`
        : `Cannot ${action}: the file is not open for ${action}ing`,
    );
  }
}
