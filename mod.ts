/**
 * Python's `asyncore` for Deno: subclass {@linkcode Dispatcher}, override
 * `handle_read()`, `handle_write()`, `handle_accept()`, `handle_connect()` and
 * `handle_close()`, steer with `readable()`/`writable()`, and run
 * {@linkcode loop}. {@linkcode AsyncChat} adds terminator-driven protocols and
 * producers, as Python's `asynchat` does.
 *
 * Python's names are kept, so a port goes line by line; the lowercase class
 * names (`dispatcher`, `dispatcher_with_send`, `async_chat`, …) are exported
 * too.
 *
 * @example An echo server and a client on one loop
 * ```ts
 * import {
 *   close_all,
 *   Dispatcher,
 *   DispatcherWithSend,
 *   loop,
 * } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * class EchoHandler extends DispatcherWithSend {
 *   override handle_read(): void {
 *     const data = this.recv(8192);
 *     if (data.length > 0) this.send(data);
 *   }
 * }
 *
 * class EchoServer extends Dispatcher {
 *   constructor(host: string, port: number) {
 *     super();
 *     this.create_socket();
 *     this.set_reuse_addr();
 *     this.bind([host, port]);
 *     this.listen(5);
 *   }
 *   override handle_accepted(sock: Deno.Conn): void {
 *     new EchoHandler(sock);
 *   }
 * }
 *
 * class Client extends DispatcherWithSend {
 *   reply = "";
 *   override handle_connect(): void {
 *     this.send(new TextEncoder().encode("ping"));
 *   }
 *   override handle_read(): void {
 *     this.reply += new TextDecoder().decode(this.recv(8192));
 *     if (this.reply === "ping") close_all();
 *   }
 * }
 *
 * const server = new EchoServer("127.0.0.1", 0);
 * const client = new Client();
 * client.create_socket();
 * client.connect(server.getsockname());
 * await loop({ timeout: 5 });
 * assert.equal(client.reply, "ping");
 * ```
 *
 * @module
 */

export * from "./socket.ts";
export * from "./loop.ts";
export * from "./dispatcher.ts";
export * from "./asynchat.ts";
export * from "./timers.ts";
export * from "./_aliases.ts";
