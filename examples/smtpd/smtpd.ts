/**
 * An SMTP server, Python's `python -m smtpd -c DebuggingServer` on this
 * package: it prints each message it receives, or with `--maildir` delivers
 * each into a Maildir.
 *
 *     deno run -A examples/smtpd/smtpd.ts [--host H] [--port P]
 *         [--maildir DIR] [--size-limit BYTES] [--smtputf8]
 *         [--grace SECONDS] [--timeout SECONDS]
 *         [--command-timeout SECONDS] [--data-timeout SECONDS]
 *         [--max-recipients N] [--max-reply-buffer BYTES]
 *         [--tls-cert PEM --tls-key PEM]
 *
 * HOST defaults to 127.0.0.1, PORT to 8025 (0 picks a free port), the size
 * limit to 33554432 bytes (0: none). A client silent for `--timeout`
 * seconds (default 300, RFC 5321's minimum; 0: none) gets `421` and is
 * disconnected; so is one whose command line takes longer than
 * `--command-timeout` seconds from its first byte (default 300; 0: none)
 * or whose message takes longer than `--data-timeout` seconds from the
 * `354` (default 600; 0: none), however steadily its bytes come. A
 * transaction takes up to `--max-recipients` recipients (default 1000;
 * RFC 5321 asks for at least 100), and `RCPT` past them gets `452`. A
 * client that leaves more than `--max-reply-buffer` bytes of replies
 * unread (default 65536) is not read from until it reads them. Prints
 * `listening on HOST:PORT` once bound. With a certificate and its key, EHLO
 * offers STARTTLS (RFC 3207).
 * SIGINT or SIGTERM stops accepting, lets messages being received
 * finish for up to `--grace` seconds (default 10), answers every other
 * session `421`, then exits with status 0: a message is stored only if its
 * `250` was sent.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loop, type TlsServerOptions } from "@asyncore/asyncore";
import {
  COMMAND_TIMEOUT_DEFAULT,
  DATA_SIZE_DEFAULT,
  DATA_TIMEOUT_DEFAULT,
  DebuggingServer,
  MaildirServer,
  MAX_RECIPIENTS_DEFAULT,
  MAX_REPLY_BUFFER_DEFAULT,
  type SMTPServer,
  TIMEOUT_DEFAULT,
} from "./mod.ts";

const USAGE =
  "usage: smtpd.ts [--host HOST] [--port PORT] [--maildir DIR] [--size-limit BYTES] [--smtputf8] [--grace SECONDS] [--timeout SECONDS] [--command-timeout SECONDS] [--data-timeout SECONDS] [--max-recipients N] [--max-reply-buffer BYTES] [--tls-cert PEM --tls-key PEM]";
/** Seconds the replies of a shutdown may take to be written. */
const FLUSH_LIMIT = 5;

function fail(message: string): never {
  console.error(`smtpd.ts: ${message}\n${USAGE}`);
  Deno.exit(2);
}

function integer(value: string, name: string, max: number, min = 0): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n > max || n < min) {
    fail(`--${name} "${value}" is not an integer in ${min}..${max}`);
  }
  return n;
}

async function readTls(
  certFile: string | undefined,
  keyFile: string | undefined,
): Promise<TlsServerOptions | null> {
  if (certFile === undefined && keyFile === undefined) return null;
  if (certFile === undefined || keyFile === undefined) {
    fail("--tls-cert and --tls-key go together");
  }
  const read = (file: string, name: string): Promise<string> =>
    Deno.readTextFile(file).catch((error) =>
      fail(`--${name} "${file}": ${(error as Error).message}`)
    );
  return {
    cert: await read(certFile, "tls-cert"),
    key: await read(keyFile, "tls-key"),
  };
}

function seconds(value: string, name: string): number | null {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    fail(`--${name} "${value}" is not a number of seconds`);
  }
  return n === 0 ? null : n;
}

if (import.meta.main) {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: "8025" },
        maildir: { type: "string" },
        "size-limit": { type: "string", default: String(DATA_SIZE_DEFAULT) },
        smtputf8: { type: "boolean", default: false },
        grace: { type: "string", default: "10" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        timeout: { type: "string", default: String(TIMEOUT_DEFAULT) },
        "command-timeout": {
          type: "string",
          default: String(COMMAND_TIMEOUT_DEFAULT),
        },
        "data-timeout": {
          type: "string",
          default: String(DATA_TIMEOUT_DEFAULT),
        },
        "max-recipients": {
          type: "string",
          default: String(MAX_RECIPIENTS_DEFAULT),
        },
        "max-reply-buffer": {
          type: "string",
          default: String(MAX_REPLY_BUFFER_DEFAULT),
        },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const options = {
    data_size_limit: integer(
      values["size-limit"],
      "size-limit",
      Number.MAX_SAFE_INTEGER,
    ),
    enable_SMTPUTF8: values.smtputf8,
    tls: await readTls(values["tls-cert"], values["tls-key"]),
    timeout: seconds(values.timeout, "timeout"),
    commandTimeout: seconds(values["command-timeout"], "command-timeout"),
    dataTimeout: seconds(values["data-timeout"], "data-timeout"),
    maxRecipients: integer(
      values["max-recipients"],
      "max-recipients",
      Number.MAX_SAFE_INTEGER,
      1,
    ),
    maxReplyBuffer: integer(
      values["max-reply-buffer"],
      "max-reply-buffer",
      Number.MAX_SAFE_INTEGER,
    ),
  };
  const address: [string, number] = [
    values.host,
    integer(values.port, "port", 65535),
  ];
  if (!/^[0-9]+(\.[0-9]+)?$/.test(values.grace)) {
    fail(`--grace "${values.grace}" is not a number of seconds`);
  }
  const grace = Number(values.grace);
  let server: SMTPServer;
  if (values.maildir !== undefined) {
    try {
      server = new MaildirServer(address, values.maildir, options);
    } catch (error) {
      if (
        !(error instanceof Deno.errors.AlreadyExists ||
          error instanceof Deno.errors.NotADirectory ||
          error instanceof Deno.errors.PermissionDenied)
      ) throw error;
      fail(`--maildir "${values.maildir}" is not a Maildir: ${error.message}`);
    }
  } else {
    server = new DebuggingServer(address, options);
  }
  const [host, port] = server.getsockname() as [string, number];
  console.log(`listening on ${host}:${port}`);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, onSignal);
  }
  await loop({ signal: stop.signal });
  // Stop accepting; idle sessions get 421, messages being received may
  // finish. The loop ends once every session has closed, or at the deadline.
  server.shutdown();
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), grace * 1000);
  await loop({ signal: deadline.signal });
  clearTimeout(timer);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.removeSignalListener(signal, onSignal);
  }
  // Closed channels still write their last replies: the process ends once
  // they are written, or after FLUSH_LIMIT seconds (a client not reading).
  Deno.unrefTimer(setTimeout(() => Deno.exit(0), FLUSH_LIMIT * 1000));
  // Messages still arriving are dropped unanswered; those being stored get
  // their reply first.
  server.abort();
  await loop();
}
