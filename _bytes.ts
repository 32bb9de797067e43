// Byte helpers: the shared empty array, and for asynchat terminator search,
// joining, and Python's string encodings (TextEncoder only speaks UTF-8;
// Python's asynchat default is latin-1).

/** No bytes: one shared instance (a zero-length view cannot be written to). */
export const EMPTY: Uint8Array = new Uint8Array(0);
const utf8 = new TextEncoder();

/**
 * The first index of `needle` (not empty) in `haystack` at or after `from`,
 * or -1. Scans with the native `indexOf` for the first byte, then compares
 * the rest.
 */
export function indexOfBytes(
  haystack: Uint8Array,
  needle: Uint8Array,
  from = 0,
): number {
  const size = needle.length;
  const first = needle[0]!;
  const last = haystack.length - size;
  let i = haystack.indexOf(first, from);
  while (i !== -1 && i <= last) {
    let j = 1;
    while (j < size && haystack[i + j] === needle[j]) j++;
    if (j === size) return i;
    i = haystack.indexOf(first, i + 1);
  }
  return -1;
}

/** `a` followed by `b`, in a new array (or one of them when the other is empty). */
export function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

/** All `chunks` joined (the chunk itself when there is only one). */
export function concatAll(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let size = 0;
  for (const chunk of chunks) size += chunk.length;
  if (size === 0) return EMPTY;
  const joined = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

// Python's codec names for the encodings asynchat users actually set.
const LIMITS: Record<string, number> = {
  "latin-1": 0x100,
  "latin1": 0x100,
  "iso-8859-1": 0x100,
  "iso8859-1": 0x100,
  "l1": 0x100,
  "ascii": 0x80,
  "us-ascii": 0x80,
};

/**
 * Encodes `text` as Python's `bytes(text, encoding)` does for UTF-8,
 * latin-1 and ASCII.
 *
 * @throws {RangeError} For another encoding, or a character it cannot hold.
 */
export function encodeText(
  text: string,
  encoding: string,
  action: string,
): Uint8Array {
  const name = encoding.toLowerCase().replaceAll("_", "-");
  if (name === "utf-8" || name === "utf8") return utf8.encode(text);
  const limit = LIMITS[name];
  if (limit === undefined) {
    throw new RangeError(
      `Cannot ${action}: encoding "${encoding}" is not supported (use "utf-8", "latin-1" or "ascii")`,
    );
  }
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= limit) {
      throw new RangeError(
        `Cannot ${action}: character "${
          text[i]
        }" at index ${i} is not in "${encoding}"`,
      );
    }
    bytes[i] = code;
  }
  return bytes;
}
