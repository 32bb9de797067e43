/**
 * {@linkcode DebuggingServer}: Python 3.11's `smtpd.DebuggingServer`, which
 * prints every message it receives.
 *
 * @module
 */

import type { Address } from "@asyncore/asyncore";
import {
  type MessageData,
  type ProcessMessageOptions,
  SMTPServer,
} from "./server.ts";

const decoder = new TextDecoder();

function pyList(items: readonly string[]): string {
  return `[${items.map((item) => `'${item}'`).join(", ")}]`;
}

/**
 * Python's `smtpd.DebuggingServer`: prints each message between
 * `---------- MESSAGE FOLLOWS ----------` and
 * `------------ END MESSAGE ------------`, with the MAIL and RCPT
 * parameters first and an `X-Peer:` line added after the headers. Lines are
 * printed as UTF-8 text (Python 3.11 prints the `repr()` of each line of a
 * bytes message). Override {@linkcode DebuggingServer.print} to send the
 * output elsewhere.
 *
 * @example Print messages sent to a free port
 * ```ts
 * import { close_all, loop } from "@asyncore/asyncore";
 * import { DebuggingServer } from "./mod.ts";
 *
 * const server = new DebuggingServer(["127.0.0.1", 0]);
 * const stop = new AbortController();
 * const running = loop({ signal: stop.signal });
 * stop.abort();
 * await running;
 * close_all();
 * ```
 */
export class DebuggingServer extends SMTPServer {
  /**
   * Writes one line of output; the default prints it to stdout.
   *
   * @param line The line, without its line break.
   */
  print(line: string): void {
    console.log(line);
  }

  /**
   * Prints the message, inserting `X-Peer: <host>` before the first empty
   * line (the end of the headers), as Python does.
   *
   * @param peer The client's address.
   * @param data The message.
   */
  _print_message_content(peer: Address, data: MessageData): void {
    const text = typeof data === "string" ? data : decoder.decode(data);
    const lines = text.split(/\r\n|\r|\n/);
    // Like Python's splitlines(): a final line break starts no new line.
    if (lines.at(-1) === "") lines.pop();
    let inHeaders = true;
    for (const line of lines) {
      if (inHeaders && line === "") {
        this.print(`X-Peer: ${typeof peer === "string" ? peer : peer[0]}`);
        inHeaders = false;
      }
      this.print(line);
    }
  }

  /**
   * Prints the message and accepts it.
   *
   * @param peer The client's address.
   * @param _mailfrom The sender (not printed, as in Python).
   * @param _rcpttos The recipients (not printed, as in Python).
   * @param data The message.
   * @param options The MAIL and RCPT parameters, printed when present.
   */
  override process_message(
    peer: Address,
    _mailfrom: string,
    _rcpttos: string[],
    data: MessageData,
    options: ProcessMessageOptions,
  ): void {
    this.print("---------- MESSAGE FOLLOWS ----------");
    if (options.mail_options?.length) {
      this.print(`mail options: ${pyList(options.mail_options)}`);
    }
    if (options.rcpt_options?.length) {
      this.print(`rcpt options: ${pyList(options.rcpt_options)}\n`);
    }
    this._print_message_content(peer, data);
    this.print("------------ END MESSAGE ------------");
  }
}
