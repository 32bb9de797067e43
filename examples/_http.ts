/**
 * The HTTP/1.1 pieces of `examples/http_server.ts`, kept free of any I/O
 * model so the benchmark's `Deno.serve` and raw-socket servers reuse them and
 * do exactly the same work per request: parse a request head, map its target
 * to a file inside a root directory (never outside it), pick a
 * `Content-Type`, format responses, and produce file bodies for asynchat: a
 * `more()` producer for a small file, an async iterable of chunks for a
 * large one.
 *
 * @module
 */

/** Largest request head (request line and headers) accepted, in bytes. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Largest request body accepted; bodies are read and dropped (no uploads). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Bytes of a file read per producer chunk (asynchat's `ac_out_buffer_size`). */
export const CHUNK_BYTES = 64 * 1024;

/** The reason phrases of every status the server sends. */
export const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  301: "Moved Permanently",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  505: "HTTP Version Not Supported",
};

/** A request that cannot be answered normally, with the status to send. */
export class HttpError extends Error {
  /** The HTTP status code to answer with. */
  readonly status: number;

  /**
   * Creates the error.
   *
   * @param status The HTTP status code, e.g. 400.
   * @param message What was wrong with the request.
   *
   * @example A malformed request
   * ```ts
   * import { HttpError } from "./_http.ts";
   * import assert from "node:assert/strict";
   *
   * const error = new HttpError(400, "Cannot parse request: no version");
   * assert.equal(error.status, 400);
   * ```
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

/** A parsed request head. */
export interface RequestHead {
  /** The method, case-sensitive (`GET`, `HEAD`, …). */
  method: string;
  /** The request target as sent (origin-form or absolute-form). */
  target: string;
  /** The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 and later 1.x. */
  minor: number;
  /** Header fields by lowercase name; repeated fields joined with ", ". */
  headers: Map<string, string>;
  /** Whether the connection stays open after the response. */
  keepAlive: boolean;
  /** The body's length in bytes (0 without `Content-Length`). */
  contentLength: number;
}

const TCHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
// Only visible ASCII in a target: raw spaces, controls or 8-bit bytes are
// what request-smuggling and path tricks are made of.
const REQUEST_LINE = new RegExp(
  `^(${TCHAR}+) ([\\x21-\\x7e]+) HTTP/(\\d)\\.(\\d)$`,
);
const FIELD = new RegExp(`^(${TCHAR}+):[ \\t]*(.*?)[ \\t]*$`);
// Control characters other than tab are never valid in a field value.
// deno-lint-ignore no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const LEADING_EOL = /^(?:\r?\n)+/;
// Lines end in CRLF, or a bare LF as Python's http.server accepts.
const EOL = /\r?\n/;

/**
 * Parses a request head (the text before the blank line, without it) and
 * checks what RFC 9112 asks a server to reject.
 *
 * @param text The head, decoded as Latin-1; leading empty lines are ignored.
 * @returns The request, or `null` if the text held only empty lines.
 * @throws {HttpError} 400 for a malformed request line or field, a missing
 * or repeated `Host` in HTTP/1.1, or a bad `Content-Length`; 501 for a
 * `Transfer-Encoding` (chunked bodies are not read); 505 for a version other
 * than 1.x.
 *
 * @example Parse a keep-alive request
 * ```ts
 * import { parseRequestHead } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const request = parseRequestHead("GET /a.txt HTTP/1.1\r\nHost: x");
 * assert.equal(request?.method, "GET");
 * assert.equal(request?.keepAlive, true);
 * ```
 */
export function parseRequestHead(text: string): RequestHead | null {
  const lines = text.replace(LEADING_EOL, "").split(EOL);
  const first = lines[0]!;
  if (first === "" && lines.length === 1) return null;
  const line = REQUEST_LINE.exec(first);
  if (line === null) {
    throw new HttpError(400, "Cannot parse request: malformed request line");
  }
  const [, method, target, major, minorText] = line as unknown as string[];
  if (major !== "1") {
    throw new HttpError(505, `Cannot serve request: HTTP/${major} requested`);
  }
  const minor = minorText === "0" ? 0 : 1;
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const field = FIELD.exec(lines[i]!);
    // Also rejects obsolete line folding (a line starting with a space) and
    // a space before the colon, both smuggling vectors.
    if (field === null || BAD_VALUE.test(field[2]!)) {
      throw new HttpError(400, "Cannot parse request: malformed header field");
    }
    const name = field[1]!.toLowerCase();
    const value = field[2]!;
    const seen = headers.get(name);
    if (seen === undefined) {
      headers.set(name, value);
    } else if (name === "host") {
      throw new HttpError(400, "Cannot parse request: repeated Host");
    } else if (name === "content-length") {
      if (seen !== value) {
        throw new HttpError(
          400,
          "Cannot parse request: Content-Length differs",
        );
      }
    } else {
      headers.set(name, `${seen}, ${value}`);
    }
  }
  if (minor === 1 && !headers.has("host")) {
    throw new HttpError(400, "Cannot parse request: HTTP/1.1 without Host");
  }
  if (headers.has("transfer-encoding")) {
    throw new HttpError(501, "Cannot read body: Transfer-Encoding unsupported");
  }
  const length = headers.get("content-length") ?? "0";
  if (!/^\d{1,15}$/.test(length)) {
    throw new HttpError(400, "Cannot parse request: bad Content-Length");
  }
  const options = (headers.get("connection") ?? "").toLowerCase().split(",")
    .map((option) => option.trim());
  const keepAlive = minor === 1
    ? !options.includes("close")
    : options.includes("keep-alive");
  return {
    method: method!,
    target: target!,
    minor,
    headers,
    keepAlive,
    contentLength: Number(length),
  };
}

/** Where a request target leads: a file, a redirect, or an error status. */
export type Resolved =
  | { status: 200; path: string; info: Deno.FileInfo }
  | { status: 301; location: string }
  | { status: 400 | 403 | 404 };

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root === "/" ? "/" : `${root}/`);
}

// The real path and info of `path` if it is a regular file inside `root`.
function lookUp(root: string, path: string): Resolved {
  let real: string;
  let info: Deno.FileInfo;
  try {
    real = Deno.realPathSync(path);
    // A symlink may point anywhere: judge where it really leads.
    if (!isInside(root, real)) return { status: 403 };
    info = Deno.statSync(real);
  } catch (error) {
    return {
      status: error instanceof Deno.errors.PermissionDenied ? 403 : 404,
    };
  }
  if (info.isDirectory) return { status: 200, path: real, info };
  // FIFOs, sockets and devices would block or never end: not served.
  return info.isFile ? { status: 200, path: real, info } : { status: 404 };
}

/**
 * Maps a request target to a regular file inside `root`. Each path segment
 * is percent-decoded on its own, so `%2e%2e` is `..` and `%2f` cannot join
 * segments; `..`, encoded slashes or backslashes and NUL are refused, and
 * the file's real path (symlinks resolved) must stay inside `root`. A
 * directory serves its `index.html`; one named without its trailing slash
 * is redirected to it, so relative links in the page resolve.
 *
 * @param root The served directory's real path (`Deno.realPathSync(dir)`).
 * @param target The request target (`/a/b.txt?q`, or `http://host/a`).
 * @returns The file's real path and info, a redirect, or 400/403/404.
 *
 * @example Refuse a traversal
 * ```ts
 * import { resolveTarget } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const root = Deno.realPathSync(Deno.makeTempDirSync());
 * assert.equal(resolveTarget(root, "/%2e%2e/etc/passwd").status, 403);
 * assert.equal(resolveTarget(root, "/missing.txt").status, 404);
 * Deno.removeSync(root);
 * ```
 */
export function resolveTarget(root: string, target: string): Resolved {
  let path = target;
  if (!path.startsWith("/")) {
    const absolute = /^https?:\/\/[^/?#]*(.*)$/i.exec(path);
    if (absolute === null) return { status: 400 };
    path = absolute[1]!.startsWith("/") ? absolute[1]! : `/${absolute[1]}`;
  }
  const end = path.search(/[?#]/);
  const raw = end === -1 ? path : path.slice(0, end);
  const names: string[] = [];
  for (const segment of raw.split("/")) {
    let name: string;
    try {
      name = decodeURIComponent(segment);
    } catch {
      return { status: 400 };
    }
    if (name === "" || name === ".") continue;
    if (name === ".." || /[/\\\0]/.test(name)) return { status: 403 };
    names.push(name);
  }
  const found = lookUp(
    root,
    names.length ? `${root}/${names.join("/")}` : root,
  );
  if (found.status !== 200 || !found.info.isDirectory) return found;
  if (!raw.endsWith("/")) {
    const query = end === -1 ? "" : path.slice(end).replace(/#.*/, "");
    return { status: 301, location: `${raw}/${query}` };
  }
  const index = lookUp(root, `${found.path}/index.html`);
  return index.status === 200 && index.info.isDirectory
    ? { status: 404 }
    : index;
}

const TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  htm: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  json: "application/json",
  txt: "text/plain; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  xml: "application/xml",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  ico: "image/vnd.microsoft.icon",
  pdf: "application/pdf",
  wasm: "application/wasm",
  zip: "application/zip",
  gz: "application/gzip",
  tar: "application/x-tar",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  wav: "audio/wav",
  mp4: "video/mp4",
  webm: "video/webm",
  woff: "font/woff",
  woff2: "font/woff2",
  ttf: "font/ttf",
  otf: "font/otf",
};

/**
 * The `Content-Type` for a file name, from its extension.
 *
 * @param path The file's path or name.
 * @returns The media type; `application/octet-stream` when unknown.
 *
 * @example Look up a few types
 * ```ts
 * import { contentType } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(contentType("/www/index.HTML"), "text/html; charset=utf-8");
 * assert.equal(contentType("data.bin"), "application/octet-stream");
 * ```
 */
export function contentType(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  const type = dot > 0 ? TYPES[name.slice(dot + 1).toLowerCase()] : undefined;
  return type ?? "application/octet-stream";
}

let dateSecond = -1;
let dateText = "";

/**
 * The current time as an HTTP date, computed at most once a second.
 *
 * @returns E.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
 *
 * @example Format the current time
 * ```ts
 * import { httpDate } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(httpDate(), /^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
 * ```
 */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

const encoder = new TextEncoder();

/**
 * Formats a response head: status line, `Date`, `Server`, the given fields
 * and the blank line.
 *
 * @param status The status code; its reason comes from {@linkcode REASONS}.
 * @param fields Header fields in order; `undefined` values are left out.
 * @returns The head as bytes (ASCII).
 *
 * @example A 404 head
 * ```ts
 * import { formatHead } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const head = new TextDecoder().decode(formatHead(404, { "Content-Length": 0 }));
 * assert.match(head, /^HTTP\/1\.1 404 Not Found\r\n[^]*Content-Length: 0\r\n\r\n$/);
 * ```
 */
export function formatHead(
  status: number,
  fields: Record<string, string | number | undefined>,
): Uint8Array {
  let text = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n` +
    `Date: ${httpDate()}\r\nServer: asyncore-deno\r\n`;
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) text += `${name}: ${value}\r\n`;
  }
  return encoder.encode(`${text}\r\n`);
}

/**
 * The `Connection` field a response needs: `close` when the connection
 * ends, `keep-alive` for an HTTP/1.0 client that asked to keep it, nothing
 * for HTTP/1.1's default.
 *
 * @param request The request answered, or `null` when it could not be parsed.
 * @returns The field value, or `undefined` for none.
 *
 * @example An HTTP/1.0 request closes by default
 * ```ts
 * import { connectionField, parseRequestHead } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(connectionField(parseRequestHead("GET / HTTP/1.0")), "close");
 * ```
 */
export function connectionField(
  request: RequestHead | null,
): string | undefined {
  if (request === null || !request.keepAlive) return "close";
  return request.minor === 0 ? "keep-alive" : undefined;
}

/**
 * A complete small response for a status other than 200: a one-line text
 * body (left out for `HEAD`, its length still given) and the right
 * `Connection` field.
 *
 * @param status The status code.
 * @param request The request answered, or `null` if it was malformed (the
 * connection then closes).
 * @param extra More fields, e.g. `{ Allow: "GET, HEAD" }` or a `Location`.
 * @returns The response bytes.
 *
 * @example A 405 response
 * ```ts
 * import { parseRequestHead, statusResponse } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const request = parseRequestHead("PUT / HTTP/1.1\r\nHost: x");
 * const text = new TextDecoder().decode(
 *   statusResponse(405, request, { Allow: "GET, HEAD" }),
 * );
 * assert.match(text, /\r\nAllow: GET, HEAD\r\n[^]*\r\n\r\n405 Method Not Allowed\n$/);
 * ```
 */
export function statusResponse(
  status: number,
  request: RequestHead | null,
  extra: Record<string, string> = {},
): Uint8Array {
  const body = encoder.encode(`${status} ${REASONS[status] ?? "Unknown"}\n`);
  const head = formatHead(status, {
    ...extra,
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": body.length,
    Connection: connectionField(request),
  });
  if (request?.method === "HEAD") return head;
  const response = new Uint8Array(head.length + body.length);
  response.set(head);
  response.set(body, head.length);
  return response;
}

/**
 * The head of a 200 response for a file: type, length, modification time.
 *
 * @param path The file's path (for its type).
 * @param info The file's info (for its size and mtime).
 * @param request The request answered.
 * @returns The head bytes.
 *
 * @example The head for a text file
 * ```ts
 * import { fileHead, parseRequestHead } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const path = Deno.makeTempFileSync({ suffix: ".txt" });
 * Deno.writeTextFileSync(path, "hello");
 * const request = parseRequestHead("GET /x.txt HTTP/1.1\r\nHost: x");
 * const head = new TextDecoder().decode(
 *   fileHead(path, Deno.statSync(path), request!),
 * );
 * assert.match(head, /\r\nContent-Length: 5\r\n/);
 * Deno.removeSync(path);
 * ```
 */
export function fileHead(
  path: string,
  info: Deno.FileInfo,
  request: RequestHead,
): Uint8Array {
  return formatHead(200, {
    "Content-Type": contentType(path),
    "Content-Length": info.size,
    "Last-Modified": info.mtime?.toUTCString(),
    Connection: connectionField(request),
  });
}

function readExactly(file: Deno.FsFile, target: Uint8Array, path: string) {
  for (let filled = 0; filled < target.length;) {
    const n = file.readSync(target.subarray(filled));
    if (n === null) throw shrank(path);
    filled += n;
  }
}

function shrank(path: string): RangeError {
  return new RangeError(
    `Cannot send file: "${path}" shrank while it was being sent`,
  );
}

/**
 * An asynchat producer (`more()`) for a small response: the head and the
 * whole file in one chunk, so it goes out in one write. The file is read
 * only when the response's turn comes, so pipelined requests queued behind
 * a long download hold neither a descriptor nor the file's bytes.
 */
export class WholeFileProducer {
  #head: Uint8Array | null;
  #path: string;
  #size: number;

  /**
   * Prepares the producer; nothing is read yet.
   *
   * @param head The response head, sent first.
   * @param path The file to send.
   * @param size How many bytes of it to send (its size when the head was
   * made); 0 for a response to HEAD.
   *
   * @example Produce a head and a small file
   * ```ts
   * import { WholeFileProducer } from "./_http.ts";
   * import assert from "node:assert/strict";
   *
   * const path = Deno.makeTempFileSync();
   * Deno.writeTextFileSync(path, "body");
   * const head = new TextEncoder().encode("head:");
   * const producer = new WholeFileProducer(head, path, 4);
   * assert.equal(new TextDecoder().decode(producer.more()), "head:body");
   * assert.equal(producer.more().length, 0);
   * Deno.removeSync(path);
   * ```
   */
  constructor(head: Uint8Array, path: string, size: number) {
    this.#head = head;
    this.#path = path;
    this.#size = size;
  }

  /**
   * The whole response on the first call, then an empty array.
   *
   * @returns The head followed by the file's first `size` bytes.
   * @throws {Deno.errors.NotFound} If the file vanished since the head was
   * made (the connection must then close: the head promised a length).
   * @throws {RangeError} If the file shrank below the promised size.
   */
  more(): Uint8Array {
    const head = this.#head;
    if (head === null) return new Uint8Array(0);
    this.#head = null;
    if (this.#size === 0) return head;
    const data = new Uint8Array(head.length + this.#size);
    data.set(head);
    using file = Deno.openSync(this.#path);
    readExactly(file, data.subarray(head.length), this.#path);
    return data;
  }
}

/**
 * The first `size` bytes of a file as an async iterable of chunks: an async
 * producer for {@linkcode AsyncChat.push_with_producer}, which asks for a
 * chunk only when the connection can take it, so a multi-GB file is never
 * held in memory and disk reads never block the loop. The file is opened
 * on the first chunk and closed after the last one, or when the channel
 * closes early (asynchat then ends the iteration).
 *
 * @param path The file to send.
 * @param size How many bytes to send (its size when the head was made).
 * @param chunk Most bytes per chunk.
 * @returns The chunks.
 * @throws {Deno.errors.NotFound} If the file vanished since its head was made.
 * @throws {RangeError} If the file shrank below `size`.
 *
 * @example Read a file in 3-byte chunks
 * ```ts
 * import { fileChunks } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const path = Deno.makeTempFileSync();
 * Deno.writeTextFileSync(path, "abcdefg");
 * const chunks = await Array.fromAsync(fileChunks(path, 7, 3));
 * assert.deepEqual(chunks.map((c) => new TextDecoder().decode(c)), ["abc", "def", "g"]);
 * Deno.removeSync(path);
 * ```
 */
export async function* fileChunks(
  path: string,
  size: number,
  chunk: number = CHUNK_BYTES,
): AsyncGenerator<Uint8Array> {
  using file = await Deno.open(path);
  for (let left = size; left > 0;) {
    const data = new Uint8Array(Math.min(left, chunk));
    for (let filled = 0; filled < data.length;) {
      const n = await file.read(data.subarray(filled));
      if (n === null) throw shrank(path);
      filled += n;
    }
    left -= data.length;
    yield data;
  }
}
