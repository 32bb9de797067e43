/**
 * {@linkcode MaildirServer}: an {@linkcode SMTPServer} that stores each
 * message as one file in a directory.
 *
 * @module
 */

import type { Address } from "@asyncore/asyncore";
import { getfqdn } from "./_fqdn.ts";
import {
  type MessageData,
  type ProcessMessageOptions,
  SMTPServer,
  type SMTPServerOptions,
} from "./server.ts";

const encoder = new TextEncoder();
const LF = 0x0a;
const CR = 0x0d;
let delivered = 0;

// The message on the wire after dot-unstuffing: each LF Python's join put
// between lines becomes CRLF again, and the last line gets its CRLF back.
function toWireForm(header: string, data: MessageData): Uint8Array {
  const body = typeof data === "string" ? encoder.encode(data) : data;
  const head = encoder.encode(header);
  // One CR more per LF, and a CRLF at the end.
  let extra = 2;
  for (let i = body.indexOf(LF); i !== -1; i = body.indexOf(LF, i + 1)) {
    extra++;
  }
  const out = new Uint8Array(head.length + body.length + extra);
  out.set(head);
  let at = head.length;
  let from = 0;
  for (let i = body.indexOf(LF); i !== -1; i = body.indexOf(LF, i + 1)) {
    out.set(body.subarray(from, i), at);
    at += i - from;
    out[at++] = CR;
    out[at++] = LF;
    from = i + 1;
  }
  out.set(body.subarray(from), at);
  at += body.length - from;
  out[at++] = CR;
  out[at++] = LF;
  return out;
}

// Header values come from the client: keep them on one line.
function oneLine(value: string): string {
  return value.replace(/[\r\n]/g, " ");
}

/**
 * An {@linkcode SMTPServer} that stores every message it accepts as one file
 * in `directory`: `X-Peer:`, `X-MailFrom:` and `X-RcptTo:` header lines,
 * then the message as it came over the wire after dot-unstuffing (CRLF line
 * ends, bytes untouched, 8-bit data included). Each file is written under a
 * temporary name starting with `.` and then renamed, so a reader of the
 * directory never sees half a message. If the file cannot be written, the
 * client gets `451` and the error is logged with `log_info()`.
 *
 * @example Store messages in a temporary directory
 * ```ts
 * import { close_all, loop } from "@asyncore/asyncore";
 * import { MaildirServer } from "./mod.ts";
 *
 * const directory = await Deno.makeTempDir();
 * const server = new MaildirServer(["127.0.0.1", 0], directory);
 * const stop = new AbortController();
 * const running = loop({ signal: stop.signal });
 * // ... clients deliver mail; each message becomes a file in directory ...
 * stop.abort();
 * await running;
 * close_all();
 * await Deno.remove(directory, { recursive: true });
 * ```
 */
export class MaildirServer extends SMTPServer {
  /** Where messages are stored. */
  readonly directory: string;

  /**
   * Binds `localaddr` and stores messages in `directory`, which must exist.
   *
   * @param localaddr `[host, port]`, or a Unix socket path.
   * @param directory The directory for the message files.
   * @param options The {@linkcode SMTPServer} options.
   * @throws {TypeError} If `directory` is not a non-empty string, or an
   * option is wrong (see {@linkcode SMTPServer}).
   * @throws {RangeError} If `data_size_limit` is out of range.
   */
  constructor(
    localaddr: Address,
    directory: string,
    options: SMTPServerOptions = {},
  ) {
    if (typeof directory !== "string" || directory === "") {
      throw new TypeError(
        "Cannot create MaildirServer: directory must be a non-empty string",
      );
    }
    super(localaddr, options);
    this.directory = directory;
  }

  /**
   * Writes the message to a new file (see {@linkcode MaildirServer}).
   *
   * @param peer The client's address.
   * @param mailfrom The sender.
   * @param rcpttos The recipients.
   * @param data The message.
   * @param _options The MAIL and RCPT parameters (not stored).
   * @returns `undefined` (`250 OK`) once the file is in place, or a `451`
   * reply if it could not be written.
   */
  override async process_message(
    peer: Address,
    mailfrom: string,
    rcpttos: string[],
    data: MessageData,
    _options: ProcessMessageOptions,
  ): Promise<string | undefined> {
    const host = typeof peer === "string" ? peer : peer[0];
    const header = `X-Peer: ${oneLine(host)}\r\nX-MailFrom: ${
      oneLine(mailfrom)
    }\r\nX-RcptTo: ${oneLine(rcpttos.join(", "))}\r\n`;
    const content = toWireForm(header, data);
    const name = `${Date.now()}.P${Deno.pid}Q${++delivered}.${getfqdn()}.eml`;
    const temporary = `${this.directory}/.${name}.tmp`;
    try {
      await Deno.writeFile(temporary, content, { createNew: true });
      await Deno.rename(temporary, `${this.directory}/${name}`);
    } catch (error) {
      await Deno.remove(temporary).catch(() => {});
      this.log_info(
        `cannot store message in ${this.directory}: ${error}`,
        "error",
      );
      return "451 Requested action aborted: local error in processing";
    }
  }
}
