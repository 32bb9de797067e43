// STARTTLS: TLS on a connection that is already open. Deno.startTls is
// client-only and refuses a connection with a read pending ("Busy"), and a
// channel always has one: it cannot be withdrawn, and in STARTTLS the peer
// sends nothing more until the handshake starts, so it would never land.
// node:tls's TLSSocket runs over any duplex stream, on either side of the
// handshake, so the TLS layer is put above the raw connection instead: its
// first input is the read that was in flight. Loaded on first use only
// (node:tls costs ~50 ms and ~9 MB at startup).

import { Duplex } from "node:stream";
import * as tls from "node:tls";
import { handshakeError } from "./_errors.ts";
import { closeQuietly, ignore } from "./_quiet.ts";
import type { Stream } from "./_stream.ts";

/** TLS settings for the client's side of the handshake. */
export interface ClientTls {
  /** PEM certificates to trust instead of the system's roots. */
  caCerts?: string[];
  /** The name to check the server's certificate against. */
  serverName: string;
}

/** TLS settings for the server's side of the handshake. */
export interface ServerTls {
  /** The server's PEM certificate chain. */
  cert: string;
  /** The server's PEM private key. */
  key: string;
}

/** A stream that reads and writes through TLS, once the handshake is done. */
export interface TlsStream extends Stream {
  /** Settles when the handshake has finished (or failed). */
  readonly handshake: Promise<void>;
  /** Sends TLS `close_notify`, then shuts the connection's write side. */
  closeWrite(): Promise<void>;
}

const READ_SIZE = 16 * 1024;
/** Plaintext queued for the channel before raw reads pause. */
const QUEUE_MARK = 64 * 1024;

// Node reports the raw connection's faults with its own codes: give them back
// Deno's classes, so they count as disconnects (handle_close, not an error).
function denoError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === "ECONNRESET") return new Deno.errors.ConnectionReset(message);
  if (
    code === "EPIPE" || code === "ERR_STREAM_DESTROYED" ||
    code === "ERR_STREAM_WRITE_AFTER_END"
  ) {
    return new Deno.errors.BrokenPipe(message);
  }
  return error;
}

// What node:tls reports as a plain Error with its own code is TLS that went
// wrong (an untrusted certificate, a peer that does not speak TLS, a corrupt
// record): Deno.TlsConn reports those as InvalidData, and so does this, with
// node's code kept and its error as the cause.
function tlsError(error: unknown): unknown {
  const deno = denoError(error);
  if (!(deno instanceof Error) || deno.constructor !== Error) return deno;
  const invalid = new Deno.errors.InvalidData(deno.message, { cause: deno });
  const code = (deno as { code?: unknown }).code;
  if (code !== undefined) Object.assign(invalid, { code });
  return invalid;
}

// The raw connection as a node duplex: `first` (the channel's read that was
// in flight when TLS started) is its first input; `room()` holds back the
// next raw read while the plaintext taken from TLS waits to be read.
function transport(
  raw: Stream,
  first: Promise<Uint8Array | null> | null,
  room: () => Promise<void> | null,
): Duplex {
  let pending = first;
  return new Duplex({
    read() {
      const full = pending === null ? room() : null;
      if (full !== null) {
        full.then(() => this._read(READ_SIZE));
        return;
      }
      let next = pending;
      pending = null;
      if (next === null) {
        const buf = new Uint8Array(READ_SIZE);
        next = raw.read(buf).then((n) =>
          n === null ? null : buf.subarray(0, n)
        );
      }
      next.then(
        (bytes) => {
          // An empty read is no EOF: ask again.
          if (bytes !== null && bytes.length === 0) this._read(READ_SIZE);
          else this.push(bytes);
        },
        (error) => this.destroy(error),
      );
    },
    write(chunk: Uint8Array, _encoding, callback) {
      writeAll(raw, chunk).then(() => callback(), callback);
    },
    final(callback) {
      const conn = raw as Partial<Deno.TcpConn>;
      if (typeof conn.closeWrite !== "function") return callback();
      conn.closeWrite().then(() => callback(), callback);
    },
    destroy(error, callback) {
      closeQuietly(raw);
      callback(error);
    },
  });
}

async function writeAll(raw: Stream, data: Uint8Array): Promise<void> {
  for (let done = 0; done < data.length;) {
    done += await raw.write(data.subarray(done));
  }
}

/**
 * TLS over `raw`, as the client (`ClientTls`) or the server (`ServerTls`);
 * `first` is the raw read in flight, if any; `peer` names the other end in
 * a failed handshake's message.
 */
export function startTls(
  raw: Stream,
  first: Promise<Uint8Array | null> | null,
  options: ClientTls | ServerTls,
  peer: string,
): TlsStream {
  // Plaintext is taken from TLS as it comes ("data") and queued here: with
  // the TLS socket's own buffering (read() on "readable"), Deno 2.9.6 loses
  // the peer's close_notify and EOF once a transfer has paused it (102,400 B
  // in one go does), so the end of the stream never came. Backpressure
  // acts on the raw reads instead (QUEUE_MARK).
  const queue: Uint8Array[] = [];
  let queued = 0;
  let drained: PromiseWithResolvers<void> | null = null;
  const room = (): Promise<void> | null =>
    queued < QUEUE_MARK ? null : (drained ??= Promise.withResolvers()).promise;
  const socket = transport(raw, first, room);
  // deno-lint-ignore no-explicit-any -- node's typings want a net.Socket
  const duplex = socket as any;
  const secure = "cert" in options
    ? new tls.TLSSocket(duplex, {
      isServer: true,
      cert: options.cert,
      key: options.key,
    })
    : tls.connect({
      socket: duplex,
      servername: options.serverName,
      ...(options.caCerts ? { ca: options.caCerts } : {}),
    });
  let failure: unknown = null;
  let secured = false;
  let ended = false;
  let wake: (() => void) | null = null;
  const poke = (): void => {
    const resolve = wake;
    wake = null;
    resolve?.();
  };
  // Registered first: the handshake's rejection and the reads report the
  // same error object, which the channel then delivers once.
  secure.on("error", (error) => {
    failure ??= secured
      ? tlsError(error)
      : handshakeError(tlsError(error), peer);
    poke();
  });
  const handshake = new Promise<void>((resolve, reject) => {
    const done = (): void => {
      secured = true;
      resolve();
    };
    secure.once("secure", done);
    secure.once("secureConnect", done);
    secure.once("error", () => reject(failure));
    secure.once("close", () => {
      if (secured) return;
      failure ??= new Deno.errors.ConnectionReset(
        `Cannot complete TLS handshake with ${peer}: the connection closed`,
      );
      reject(failure);
    });
  });
  // Settled either way; the channel's reads report a failure too.
  handshake.catch(ignore);
  secure.on("data", (chunk: Uint8Array) => {
    queue.push(chunk);
    queued += chunk.length;
    poke();
  });
  secure.on("end", () => {
    ended = true;
    poke();
  });
  secure.on("close", () => {
    ended = true;
    poke();
  });
  return {
    handshake,
    async read(p: Uint8Array): Promise<number | null> {
      while (true) {
        const chunk = queue[0];
        if (chunk !== undefined) {
          const n = Math.min(p.length, chunk.length);
          p.set(chunk.subarray(0, n));
          if (n < chunk.length) queue[0] = chunk.subarray(n);
          else queue.shift();
          queued -= n;
          if (drained !== null && queued < QUEUE_MARK) {
            drained.resolve();
            drained = null;
          }
          return n;
        }
        if (failure !== null) throw failure;
        if (ended) return null;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    write(p: Uint8Array): Promise<number> {
      if (failure !== null) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        // A copy: the channel reuses its buffers once a write settles.
        secure.write(p.slice(), (error) => {
          if (error) reject(denoError(error));
          else resolve(p.length);
        });
      });
    },
    closeWrite(): Promise<void> {
      return new Promise((resolve) => secure.end(resolve));
    },
    close(): void {
      const release = (): void => {
        secure.destroy();
        socket.destroy();
      };
      // As Deno.TlsConn's close() does: close_notify first, so that the peer
      // can tell our end from a cut connection, then FIN, then the release.
      if (secured && failure === null && !secure.writableEnded) {
        secure.end(release);
      } else {
        release();
      }
      poke();
    },
  };
}
