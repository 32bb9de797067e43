/**
 * What an idle loop costs: a listener and one quiet connection served for a
 * few seconds, reporting the CPU time the process used meanwhile. A loop that
 * polled or spun on timers would show here; one that waits on its ready queue
 * uses next to nothing.
 *
 *     deno run -A bench/idle_cpu.ts [SECONDS]
 *
 * @module
 */

import { cpuUsage } from "node:process";
import {
  close_all,
  Dispatcher,
  DispatcherWithSend,
  loop,
} from "@asyncore/asyncore";

class Server extends Dispatcher {
  override handle_accepted(sock: Deno.Conn): void {
    new DispatcherWithSend(sock);
  }
}

if (import.meta.main) {
  const seconds = Number(Deno.args[0] ?? 3);
  if (!(seconds > 0)) {
    console.error("usage: deno run -A bench/idle_cpu.ts [SECONDS]");
    Deno.exit(2);
  }
  const server = new Server();
  server.create_socket();
  server.bind(["127.0.0.1", 0]);
  server.listen(5);
  const [, port] = server.getsockname() as [string, number];
  const quiet = await Deno.connect({ hostname: "127.0.0.1", port });
  const stop = new AbortController();
  setTimeout(() => stop.abort(), seconds * 1000);
  const before = cpuUsage();
  await loop({ signal: stop.signal });
  const used = cpuUsage(before);
  close_all();
  quiet.close();
  const cpu = (used.user + used.system) / 1e6;
  console.log(
    `idle loop (a listener, one quiet connection): ${
      cpu.toFixed(3)
    } CPU seconds in ${seconds} s`,
  );
}
