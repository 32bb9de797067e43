// Copies of small byte runs, carved from shared slabs. V8 keeps a typed array
// of 64 bytes or less inside its heap, and handing one to a read or write op
// makes V8 move it out first, which costs more than the op itself; a fresh
// ArrayBuffer per copy costs an allocation and external-memory accounting.
// Views into one larger buffer avoid both (Node's Buffer pool does the same).

import { EMPTY } from "./_bytes.ts";

const SLAB_SIZE = 16 * 1024;
/** Copies above this size get their own buffer, so a slab stays cheap to pin. */
const MAX_CARVE = 1024;

let slab = EMPTY;
let used = 0;

/** A private copy of `bytes` that is safe to hand to an I/O op. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.length > MAX_CARVE) return bytes.slice();
  const copy = carve(bytes.length);
  copy.set(bytes);
  return copy;
}

/**
 * `size` fresh zeroed bytes that nothing else uses: carved from a slab when
 * small (an idle connection's read buffer costs no allocation of its own).
 */
export function carve(size: number): Uint8Array {
  if (size > MAX_CARVE) return new Uint8Array(size);
  if (used + size > slab.length) {
    slab = new Uint8Array(SLAB_SIZE);
    used = 0;
  }
  const bytes = slab.subarray(used, used + size);
  // Eight-byte alignment keeps every view's start aligned for the op layer.
  used = (used + size + 7) & ~7;
  return bytes;
}

/** The size of the outbox's pooled chunks. */
export const CHUNK_SIZE = 64 * 1024;
// Allocating 64 KiB costs ~15 µs (more than writing it to a socket), so
// written chunks come back here. A few suffice: one per channel mid-write.
const MAX_POOLED = 16;
const pool: ArrayBuffer[] = [];
const ours = new WeakSet<ArrayBufferLike>();

/** A `CHUNK_SIZE` buffer, reused when one is free. */
export function takeChunk(): Uint8Array {
  const buffer = pool.pop();
  if (buffer !== undefined) return new Uint8Array(buffer);
  const chunk = new Uint8Array(CHUNK_SIZE);
  ours.add(chunk.buffer);
  return chunk;
}

/**
 * Gives back the buffer behind `chunk` if {@linkcode takeChunk} made it; no
 * view of it may be used afterwards.
 */
export function returnChunk(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  // The size rules out slab copies (most small writes) before the lookup.
  if (
    buffer.byteLength === CHUNK_SIZE && pool.length < MAX_POOLED &&
    ours.has(buffer)
  ) {
    pool.push(buffer as ArrayBuffer);
  }
}
