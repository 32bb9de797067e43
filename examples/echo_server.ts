// The echo server from Python's asyncore documentation, ported line by line:
//     deno run -A examples/echo_server.ts [PORT] [HOST]
// PORT defaults to 8007 (0 picks a free port), HOST to 127.0.0.1. Prints
// `listening on HOST:PORT`; exits 0 on SIGINT or SIGTERM. The benchmark's
// server (workers, TLS, backpressure) is bench/echo_server.ts.

import {
  type Address,
  Dispatcher,
  DispatcherWithSend,
  type SocketObject,
} from "@asyncore/asyncore";
import { serveUntilSignal } from "./_serve.ts";

class EchoHandler extends DispatcherWithSend {
  override handle_read(): void {
    const data = this.recv(8192);
    if (data.length > 0) this.send(data);
  }
}

class EchoServer extends Dispatcher {
  constructor(host: string, port: number) {
    super();
    this.create_socket();
    this.set_reuse_addr();
    this.bind([host, port]);
    this.listen(5);
  }

  override handle_accepted(sock: SocketObject, addr: Address): void {
    console.log(`Incoming connection from ${Deno.inspect(addr)}`);
    new EchoHandler(sock);
  }
}

const [port = "8007", host = "127.0.0.1"] = Deno.args;
const server = new EchoServer(host, Number(port));
await serveUntilSignal(server.getsockname()); // asyncore.loop(), until a signal
