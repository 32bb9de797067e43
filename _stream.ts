// What a channel reads from and writes to.

/** What a channel reads from and writes to: a `Deno.Conn`, a file, a pipe. */
export interface Stream {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** True for a `Deno.TlsConn`: its handshake and its Nagle setting differ. */
export function isTlsConn(stream: Stream): stream is Deno.TlsConn {
  return typeof (stream as Partial<Deno.TlsConn>).handshake === "function";
}

/** Turns Nagle off on TCP connections (Deno leaves it on). */
export function setNoDelay(conn: unknown, noDelay = true): void {
  const tcp = conn as Partial<Deno.TcpConn>;
  if (typeof tcp.setNoDelay === "function") {
    try {
      tcp.setNoDelay(noDelay);
    } catch {
      // a connection reset before we got here: the first read reports it
    }
  }
}
