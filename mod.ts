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
 * The full example, a porting guide and the loop's design are in the README
 * and `docs/`.
 *
 * @example Python's documentation echo server
 * ```ts
 * import * as asyncore from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * class EchoHandler extends asyncore.DispatcherWithSend {
 *   override handle_read(): void {
 *     this.send(this.recv(8192));
 *   }
 * }
 * class EchoServer extends asyncore.Dispatcher {
 *   override handle_accepted(sock: asyncore.SocketObject): void {
 *     new EchoHandler(sock);
 *   }
 * }
 * const server = new EchoServer();
 * server.create_socket();
 * server.bind(["127.0.0.1", 0]);
 * server.listen(5);
 * await asyncore.loop({ timeout: 0.01, count: 1 });
 * assert.equal(server.accepting, true);
 * asyncore.close_all();
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
