// Shared setup of the micro-benchmarks: connected loopback pairs and the
// open-file limit that bounds how many of them one process may hold.

/** Connections opened at once: enough to be quick, under any listen backlog. */
const BATCH = 256;

/**
 * Opens `count` TCP connections on 127.0.0.1 and returns both ends of each.
 *
 * @param count How many pairs.
 * @returns The pairs; the caller closes them.
 */
export async function connectedPairs(
  count: number,
): Promise<[Deno.TcpConn, Deno.TcpConn][]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs: [Deno.TcpConn, Deno.TcpConn][] = [];
  try {
    while (pairs.length < count) {
      const size = Math.min(BATCH, count - pairs.length);
      const connecting = Array.from(
        { length: size },
        () => Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
      );
      // A listener serves one accept at a time; they complete in any order,
      // so the ends are matched by port.
      const accepted = new Map<number, Deno.TcpConn>();
      for (let i = 0; i < size; i++) {
        const conn = await listener.accept();
        accepted.set(conn.remoteAddr.port, conn);
      }
      for (const client of await Promise.all(connecting)) {
        pairs.push([client, accepted.get(client.localAddr.port)!]);
      }
    }
  } catch (error) {
    for (const [a, b] of pairs) {
      a.close();
      b.close();
    }
    throw error;
  } finally {
    listener.close();
  }
  return pairs;
}

/**
 * The soft limit on open files (Deno raises it to the hard limit at start).
 *
 * @returns The limit, or 1024 where `/proc/self/limits` cannot be read.
 */
export function fileLimit(): number {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
    if (soft === "unlimited") return Infinity;
    if (soft !== undefined) return Number(soft);
  } catch {
    // not Linux
  }
  return 1024;
}

/** Writes all of `data` to `conn`. */
export async function writeAll(
  conn: Deno.Conn,
  data: Uint8Array,
): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await conn.write(data.subarray(offset));
  }
}
