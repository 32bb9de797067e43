/**
 * An SMTP server, Python's `python -m smtpd -c DebuggingServer` on this
 * package: it prints each message it receives, or with `--maildir` stores
 * each as one file in a directory.
 *
 *     deno run -A examples/smtpd.ts [--host H] [--port P] [--maildir DIR]
 *                                   [--size-limit BYTES] [--smtputf8]
 *
 * HOST defaults to 127.0.0.1, PORT to 8025 (0 picks a free port), the size
 * limit to 33554432 bytes (0: none). Prints `listening on HOST:PORT` once
 * bound; SIGINT or SIGTERM closes every channel and exits with status 0.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { close_all, loop } from "@asyncore/asyncore";
import {
  DATA_SIZE_DEFAULT,
  DebuggingServer,
  MaildirServer,
  type SMTPServer,
} from "./smtpd/mod.ts";

const USAGE =
  "usage: smtpd.ts [--host HOST] [--port PORT] [--maildir DIR] [--size-limit BYTES] [--smtputf8]";

function fail(message: string): never {
  console.error(`smtpd.ts: ${message}\n${USAGE}`);
  Deno.exit(2);
}

function integer(value: string, name: string, max: number): number {
  if (!/^[0-9]+$/.test(value) || Number(value) > max) {
    fail(`--${name} "${value}" is not an integer in 0..${max}`);
  }
  return Number(value);
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
  };
  const address: [string, number] = [
    values.host,
    integer(values.port, "port", 65535),
  ];
  let server: SMTPServer;
  if (values.maildir !== undefined) {
    const info = await Deno.stat(values.maildir).catch(() => null);
    if (!info?.isDirectory) {
      fail(`--maildir "${values.maildir}" is not a directory`);
    }
    server = new MaildirServer(address, values.maildir, options);
  } else {
    server = new DebuggingServer(address, options);
  }
  const [host, port] = server.getsockname() as [string, number];
  console.log(`listening on ${host}:${port}`);
  const stop = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stop.abort());
  }
  await loop({ signal: stop.signal });
  close_all();
  Deno.exit(0);
}
