// A growable byte buffer for the message data the channel collects: one copy
// per received piece, doubling capacity, no per-line arrays.

/** Bytes appended piece by piece. */
export class ByteBuffer {
  #data = new Uint8Array(1024);
  #size = 0;

  /** The number of bytes held. */
  get length(): number {
    return this.#size;
  }

  /** Appends a copy of `chunk`. */
  append(chunk: Uint8Array): void {
    this.#reserve(chunk.length);
    this.#data.set(chunk, this.#size);
    this.#size += chunk.length;
  }

  /** Appends one byte. */
  appendByte(byte: number): void {
    this.#reserve(1);
    this.#data[this.#size++] = byte;
  }

  /** Drops the last `count` bytes. */
  truncate(count: number): void {
    this.#size = Math.max(0, this.#size - count);
  }

  /** The bytes held, as a view (valid until the next append). */
  bytes(): Uint8Array {
    return this.#data.subarray(0, this.#size);
  }

  #reserve(extra: number): void {
    const need = this.#size + extra;
    if (need <= this.#data.length) return;
    let capacity = this.#data.length * 2;
    while (capacity < need) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.#data.subarray(0, this.#size));
    this.#data = grown;
  }
}
