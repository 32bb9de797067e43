// Starting an outgoing connection: TCP (with TLS on the connected socket
// when asked) or a Unix socket, and the message its failure carries.

import {
  formatAddress,
  handshakeError,
  messageAbout,
  withMessage,
} from "./_errors.ts";
import { closeQuietly } from "./_quiet.ts";
import { setNoDelay } from "./_stream.ts";

/** Where a connect goes: TCP host and port, or a Unix socket path. */
export type ConnectTarget =
  | { transport: "tcp"; hostname: string; port: number; tls: TlsTarget | null }
  | { transport: "unix"; path: string };

/** TLS settings for an outgoing connection. */
export interface TlsTarget {
  caCerts?: string[];
  serverName?: string;
}

/** One outgoing connection in flight. */
export class Connect {
  /** Whether Nagle's algorithm goes off once connected. */
  readonly noDelay: boolean;
  /** Where it goes, for its error message. */
  readonly #peer: string;
  /** Its host (or path), which Deno's message may quote whole. */
  readonly #host: string;
  #abort: AbortController | null = null;
  /** Set once the TLS handshake runs: a failure is then the handshake's. */
  #handshaking = false;
  /** The TLS connection whose handshake is awaited, meanwhile. */
  #securing: Deno.TlsConn | null = null;

  constructor(target: ConnectTarget, noDelay: boolean) {
    this.noDelay = noDelay;
    this.#host = target.transport === "unix" ? target.path : target.hostname;
    this.#peer = target.transport === "unix"
      ? formatAddress(target.path)
      : formatAddress([target.hostname, target.port]);
  }

  /**
   * Connects to `target`; settles with the connection, its TLS handshake
   * done when TLS was asked for. Nagle goes off (or stays on) before TLS
   * goes on the TCP connection, which a `Deno.TlsConn` cannot do later.
   */
  start(target: ConnectTarget): Promise<Deno.Conn> {
    if (target.transport === "unix") {
      return Deno.connect({ transport: "unix", path: target.path });
    }
    const abort = new AbortController();
    this.#abort = abort;
    const pending = Deno.connect({
      hostname: target.hostname,
      port: target.port,
      signal: abort.signal,
    });
    const tls = target.tls;
    if (tls === null) return pending;
    // TLS on the connected socket rather than Deno.connectTls: it connects
    // to the address (connectTls would look serverName up instead), and
    // Nagle goes off first, which a Deno.TlsConn cannot do later.
    // The connect completes with the handshake: handle_connect() means
    // TLS is up, and a failed handshake is reported as such.
    return pending.then(async (conn) => {
      setNoDelay(conn, this.noDelay);
      this.#handshaking = true;
      const secure = await Deno.startTls(conn as Deno.TcpConn, {
        hostname: tls.serverName ?? target.hostname,
        ...(tls.caCerts ? { caCerts: tls.caCerts } : {}),
      });
      this.#securing = secure;
      try {
        await secure.handshake();
      } catch (error) {
        closeQuietly(secure);
        throw error;
      } finally {
        this.#securing = null;
      }
      return secure;
    });
  }

  /** The error to report for a failed connect: it names the peer. */
  failure(error: unknown): unknown {
    return this.#handshaking ? handshakeError(error, this.#peer) : withMessage(
      error,
      `Cannot connect: ${this.#peer}: ${messageAbout(error, this.#host)}`,
    );
  }

  /** Gives up (the channel closed): the connect or handshake then fails. */
  abort(): void {
    this.#abort?.abort();
    this.#abort = null;
    // A handshake in flight holds the connection: closing it settles that.
    if (this.#securing !== null) closeQuietly(this.#securing);
  }
}
