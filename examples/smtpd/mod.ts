/**
 * An SMTP server on {@linkcode AsyncChat}: Python 3.11's `smtpd` module
 * (RFC 5321 with the SIZE, 8BITMIME and SMTPUTF8 extensions), with its
 * reply codes and texts. {@linkcode SMTPServer} listens and calls
 * `process_message()` for every message; {@linkcode SMTPChannel} speaks the
 * protocol; {@linkcode DebuggingServer} prints messages and
 * {@linkcode MaildirServer} stores them as files.
 *
 * The Python idiom carries over: subclass the server, override
 * `process_message()`, run the loop.
 *
 * ```python
 * class MyServer(smtpd.SMTPServer):
 *     def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
 *         print(mailfrom, rcpttos, len(data))
 * ```
 *
 * @example A server that refuses mail for one address
 * ```ts
 * import { type Address, close_all, loop } from "@asyncore/asyncore";
 * import { type MessageData, SMTPServer } from "./mod.ts";
 *
 * class MyServer extends SMTPServer {
 *   override process_message(
 *     _peer: Address,
 *     mailfrom: string,
 *     rcpttos: string[],
 *     data: MessageData,
 *   ): string | undefined {
 *     if (rcpttos.includes("nobody@example.com")) return "550 No such user";
 *     console.log(mailfrom, rcpttos, data.length);
 *   }
 * }
 *
 * const server = new MyServer(["127.0.0.1", 0]);
 * const stop = new AbortController();
 * const running = loop({ signal: stop.signal });
 * stop.abort();
 * await running;
 * close_all();
 * ```
 *
 * @module
 */

export * from "./channel.ts";
export * from "./server.ts";
export * from "./debugging_server.ts";
export * from "./maildir_server.ts";
