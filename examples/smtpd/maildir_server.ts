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
const LF = new Uint8Array([0x0a]);
let delivered = 0;

// A name no other delivery uses, as the Maildir specification builds it:
// seconds, then microseconds, process id and a counter, then the host name
// with "/" and ":" escaped (they would break the path and the info suffix).
function uniqueName(): string {
  const now = performance.timeOrigin + performance.now();
  const seconds = Math.floor(now / 1000);
  const micros = Math.floor((now - seconds * 1000) * 1000);
  const host = getfqdn().replaceAll("/", "\\057").replaceAll(":", "\\072");
  return `${seconds}.M${micros}P${Deno.pid}Q${++delivered}.${host}`;
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await file.write(data.subarray(at));
}

// Flushes a directory's entries (a new name, a rename) to the disk.
async function syncDirectory(path: string): Promise<void> {
  using directory = await Deno.open(path, { read: true });
  await directory.sync();
}

// Header values come from the client: keep them on one line.
function oneLine(value: string): string {
  return value.replace(/[\r\n]/g, " ");
}

/**
 * An {@linkcode SMTPServer} that delivers every message it accepts into a
 * Maildir, which Python's `mailbox.Maildir`, mutt and Dovecot read:
 * `tmp/`, `new/` and `cur/` are created when missing; each message is
 * written to `tmp/` under a unique name, flushed to the disk (`fsync`), then
 * renamed into `new/`, and `new/` itself is flushed, all before the client
 * gets `250`. A file holds `X-Peer:`, `X-MailFrom:` and `X-RcptTo:` header
 * lines, then the message after dot-unstuffing, with LF line ends as Maildir
 * readers expect (other bytes untouched, 8-bit data included). If the
 * message cannot be stored, nothing is left behind, the client gets `451`
 * and the error is logged with `log_info()`.
 *
 * @example Store messages in a temporary Maildir
 * ```ts
 * import { close_all, loop } from "@asyncore/asyncore";
 * import { MaildirServer } from "./mod.ts";
 *
 * const directory = await Deno.makeTempDir();
 * const server = new MaildirServer(["127.0.0.1", 0], directory);
 * const stop = new AbortController();
 * const running = loop({ signal: stop.signal });
 * // ... clients deliver mail; each message lands in directory/new/ ...
 * stop.abort();
 * await running;
 * close_all();
 * await Deno.remove(directory, { recursive: true });
 * ```
 */
export class MaildirServer extends SMTPServer {
  /** The Maildir messages are delivered to. */
  readonly directory: string;

  /**
   * Binds `localaddr` and delivers to the Maildir `directory`, creating it
   * and its `tmp/`, `new/` and `cur/` when missing.
   *
   * @param localaddr `[host, port]`, or a Unix socket path.
   * @param directory The Maildir.
   * @param options The {@linkcode SMTPServer} options.
   * @throws {TypeError} If `directory` is not a non-empty string, or an
   * option is wrong (see {@linkcode SMTPServer}).
   * @throws {RangeError} If `data_size_limit` is out of range.
   * @throws {Deno.errors.AlreadyExists} If `directory` or one of its
   * subdirectories is a file (and Deno's other file system errors).
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
    for (const sub of ["tmp", "new", "cur"]) {
      Deno.mkdirSync(`${directory}/${sub}`, { recursive: true, mode: 0o700 });
    }
    super(localaddr, options);
    this.directory = directory;
  }

  /**
   * Delivers the message into the Maildir (see {@linkcode MaildirServer}).
   *
   * @param peer The client's address.
   * @param mailfrom The sender.
   * @param rcpttos The recipients.
   * @param data The message.
   * @param _options The MAIL and RCPT parameters (not stored).
   * @returns `undefined` (`250 OK`) once the message is safely in `new/`,
   * or a `451` reply if it could not be stored.
   */
  override async process_message(
    peer: Address,
    mailfrom: string,
    rcpttos: string[],
    data: MessageData,
    _options: ProcessMessageOptions,
  ): Promise<string | undefined> {
    const host = typeof peer === "string" ? peer : peer[0];
    const header = encoder.encode(
      `X-Peer: ${oneLine(host)}\nX-MailFrom: ${oneLine(mailfrom)}\nX-RcptTo: ${
        oneLine(rcpttos.join(", "))
      }\n`,
    );
    // The channel joined the lines with LF and dropped the last line's end.
    const body = typeof data === "string" ? encoder.encode(data) : data;
    const name = uniqueName();
    const temporary = `${this.directory}/tmp/${name}`;
    const final = `${this.directory}/new/${name}`;
    let renamed = false;
    try {
      {
        using file = await Deno.open(temporary, {
          write: true,
          createNew: true,
          mode: 0o600,
        });
        await writeAll(file, header);
        await writeAll(file, body);
        await writeAll(file, LF);
        await file.sync();
      }
      await Deno.rename(temporary, final);
      renamed = true;
      await syncDirectory(`${this.directory}/new`);
    } catch (error) {
      // No 250 will be sent: leave nothing that looks delivered.
      await Deno.remove(renamed ? final : temporary).catch(() => {});
      this.log_info(
        `cannot store message in ${this.directory}: ${error}`,
        "error",
      );
      return "451 Requested action aborted: local error in processing";
    }
  }
}
