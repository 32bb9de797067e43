/**
 * A UDP echo server: a Python asyncore program ported line by line. The
 * Python original:
 *
 * ```python
 * import asyncore, socket, sys
 *
 * class EchoServer(asyncore.dispatcher):
 *
 *     def __init__(self, host, port):
 *         asyncore.dispatcher.__init__(self)
 *         self.create_socket(socket.AF_INET, socket.SOCK_DGRAM)
 *         self.set_reuse_addr()
 *         self.bind((host, port))
 *
 *     def writable(self):
 *         return False
 *
 *     def handle_read(self):
 *         data, addr = self.socket.recvfrom(2048)
 *         if data:
 *             self.socket.sendto(data, addr)
 *
 * server = EchoServer('127.0.0.1', int(sys.argv[1]))
 * host, port = server.socket.getsockname()
 * print('listening on %s:%d' % (host, port), flush=True)
 * asyncore.loop()
 * ```
 *
 *     deno run -A --unstable-net examples/udp_echo.ts [PORT] [HOST]
 *
 * PORT defaults to 8007 (0 picks a free port), HOST to 127.0.0.1 (an IPv6
 * host such as `::1` makes an `AF_INET6` socket). Prints
 * `listening on HOST:PORT` once bound; SIGINT or SIGTERM closes the socket
 * and exits. UDP needs Deno's `--unstable-net` flag and the
 * `@asyncore/asyncore/unstable-udp` import.
 *
 * @module
 */

import "@asyncore/asyncore/unstable-udp";
import { AF_INET, AF_INET6, Dispatcher, SOCK_DGRAM } from "@asyncore/asyncore";
import { serveUntilSignal } from "./_serve.ts";

/** Sends every datagram back to where it came from. */
export class EchoServer extends Dispatcher {
  constructor(host: string, port: number) {
    super();
    this.create_socket(host.includes(":") ? AF_INET6 : AF_INET, SOCK_DGRAM);
    this.set_reuse_addr();
    this.bind([host, port]);
  }

  override writable(): boolean {
    return false;
  }

  override handle_read(): void {
    const [data, addr] = this.socket!.recvfrom(2048);
    if (data.length > 0) {
      this.socket!.sendto(data, addr);
    }
  }
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 8007);
  const host = Deno.args[1] ?? "127.0.0.1";
  const server = new EchoServer(host, port);
  const family = host.includes(":") ? AF_INET6 : AF_INET;
  await serveUntilSignal(server.socket!.getsockname(family));
}
