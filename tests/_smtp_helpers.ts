// Shared by the SMTP example's tests (smtpd_*_test.ts): a raw client on a
// Deno socket, a recording server run in-process, the command-line server run
// as a subprocess and driven by Python's smtplib or swaks, the test TLS
// certificates, and what a Maildir holds.

import assert from "node:assert/strict";
import { type Address, close_all, loop } from "@asyncore/asyncore";
import {
  type MessageData,
  type ProcessMessageOptions,
  type ProcessMessageResult,
  SMTPServer,
} from "../examples/smtpd/mod.ts";
import { concat } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const SCRIPT =
  new URL("../examples/smtpd/smtpd.ts", import.meta.url).pathname;

export function run(command: string, args: string[]): boolean {
  try {
    return new Deno.Command(command, {
      args,
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

export const HAS_SMTPLIB = run("python3", ["-c", "import smtplib"]);
export const HAS_SWAKS = run("swaks", ["--version"]);

/** A bare SMTP client on a Deno socket: sends bytes, reads replies. */
export class RawClient {
  #conn: Deno.Conn;
  #buffer: Uint8Array = new Uint8Array(0);
  #chunk = new Uint8Array(65536);

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async open(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Opens a client, reads the greeting, runs `talk`, then closes it. */
  static async session(
    port: number,
    talk: (client: RawClient) => Promise<void>,
  ): Promise<void> {
    const client = await RawClient.open(port);
    try {
      await client.reply();
      await talk(client);
    } finally {
      client.close();
    }
  }

  async write(data: string | Uint8Array): Promise<void> {
    let bytes = typeof data === "string" ? encoder.encode(data) : data;
    while (bytes.length > 0) {
      bytes = bytes.subarray(await this.#conn.write(bytes));
    }
  }

  /** The next line without its CRLF, or `null` at EOF. */
  async line(): Promise<string | null> {
    for (;;) {
      const at = this.#buffer.indexOf(10);
      if (at >= 0) {
        const line = this.#buffer.subarray(0, at);
        this.#buffer = this.#buffer.slice(at + 1);
        return decoder.decode(line).replace(/\r$/, "");
      }
      const n = await this.#conn.read(this.#chunk);
      if (n === null) return null;
      this.#buffer = concat([this.#buffer, this.#chunk.subarray(0, n)]);
    }
  }

  /** The lines of one reply (a multi-line reply ends at "NNN text"). */
  async reply(): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.line();
      if (line === null) {
        throw new Error(`connection closed after ${JSON.stringify(lines)}`);
      }
      lines.push(line);
      if (line[3] !== "-") return lines;
    }
  }

  /** Sends each command in turn, each after the reply to the one before. */
  async commands(...lines: string[]): Promise<void> {
    for (const line of lines) await this.command(line);
  }

  /** Reads one single-line reply per entry of `replies`, checking each. */
  async expectReplies(...replies: string[]): Promise<void> {
    for (const reply of replies) {
      assert.deepEqual(await this.reply(), [reply]);
    }
  }

  async command(line: string | Uint8Array): Promise<string[]> {
    await this.write(
      typeof line === "string"
        ? `${line}\r\n`
        : concat([line, encoder.encode("\r\n")]),
    );
    return await this.reply();
  }

  /** Whether the server closed the connection (EOF with nothing left). */
  async atEof(): Promise<boolean> {
    return (await this.line()) === null;
  }

  close(): void {
    this.#conn.close();
  }
}

export interface Received {
  peer: Address;
  mailfrom: string;
  rcpttos: string[];
  data: MessageData;
  options: ProcessMessageOptions;
}

/** Records every message; `respond` picks the reply. */
export class Recorder extends SMTPServer {
  received: Received[] = [];
  respond: (message: Received) => ProcessMessageResult = () => undefined;

  override process_message(
    peer: Address,
    mailfrom: string,
    rcpttos: string[],
    data: MessageData,
    options: ProcessMessageOptions,
  ): ProcessMessageResult {
    const message = { peer, mailfrom, rcpttos, data, options };
    this.received.push(message);
    return this.respond(message);
  }
}

/** The port `server` listens on. */
export function portOf(server: SMTPServer): number {
  return (server.getsockname() as [string, number])[1];
}

/** Runs the loop while `body` talks to `server`, then closes everything. */
export async function serving<T>(
  server: SMTPServer,
  body: (port: number) => Promise<T>,
): Promise<T> {
  const stop = new AbortController();
  const running = loop({ signal: stop.signal });
  try {
    return await body(portOf(server));
  } finally {
    stop.abort();
    await running;
    close_all();
  }
}

/** Serves `server` while one client session (greeting read) runs `talk`. */
export function talkTo(
  server: SMTPServer,
  talk: (client: RawClient) => Promise<void>,
): Promise<void> {
  return serving(server, (port) => RawClient.session(port, talk));
}

/** Lines of a child's output, read as they come. */
export class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #text = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  async next(): Promise<string | null> {
    for (;;) {
      const at = this.#text.indexOf("\n");
      if (at >= 0) {
        const line = this.#text.slice(0, at);
        this.#text = this.#text.slice(at + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) return null;
      this.#text += value;
    }
  }

  /** Everything up to EOF. */
  async rest(): Promise<string> {
    for (;;) {
      const { value, done } = await this.#reader.read();
      if (done) return this.#text;
      this.#text += value;
    }
  }
}

export interface Smtpd {
  port: number;
  /** Stops the server with `signal` and returns its exit code and output. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stdout: string }>;
}

export async function startSmtpd(args: string[]): Promise<Smtpd> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, "--port", "0", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = new Lines(child.stdout);
  const first = await output.next();
  const match = /^listening on (.+):(\d+)$/.exec(first ?? "");
  if (match === null) {
    child.kill("SIGKILL");
    await child.status;
    await output.rest();
    throw new Error(`smtpd.ts did not start: ${JSON.stringify(first)}`);
  }
  return {
    port: Number(match[2]),
    async stop(signal: Deno.Signal = "SIGTERM") {
      child.kill(signal);
      const { code } = await child.status;
      return { code, stdout: await output.rest() };
    },
  };
}

/** Runs `body` against a fresh server; it must then exit with status 0. */
export async function withSmtpd(
  args: string[],
  body: (port: number) => Promise<void>,
): Promise<string> {
  const smtpd = await startSmtpd(args);
  let stopped: { code: number; stdout: string } | undefined;
  try {
    await body(smtpd.port);
  } finally {
    stopped = await smtpd.stop();
  }
  assert.equal(stopped.code, 0);
  return stopped.stdout;
}

// Drives smtplib with a list of operations; prints one result per operation.
const PYTHON_CLIENT = `
import json, smtplib, sys
job = json.load(sys.stdin)
def read(path):
    with open(path, "rb") as f:
        return f.read()
def plain(value):
    if isinstance(value, tuple):
        return [value[0], value[1].decode("utf-8", "replace")]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value
results = []
client = smtplib.SMTP("127.0.0.1", job["port"], timeout=60)
try:
    for op in job["ops"]:
        name, args = op[0], op[1:]
        try:
            if name == "sendmail":
                value = client.sendmail(args[0], args[1], read(args[2]), args[3])
            elif name == "data":
                value = client.data(read(args[0]))
            else:
                value = getattr(client, name)(*args)
            results.append(["ok", plain(value)])
        except smtplib.SMTPResponseException as error:
            results.append([type(error).__name__, error.smtp_code,
                            error.smtp_error.decode("utf-8", "replace")])
    client.quit()
finally:
    client.close()
print(json.dumps(results))
`;

type Op = (string | string[])[];

export async function smtplib(port: number, ops: Op[]): Promise<unknown[]> {
  const child = new Deno.Command("python3", {
    args: ["-c", PYTHON_CLIENT],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(encoder.encode(JSON.stringify({ port, ops })));
  await writer.close();
  const { success, stdout, stderr } = await child.output();
  assert.ok(success, decoder.decode(stderr));
  return JSON.parse(decoder.decode(stdout));
}

// Test-only certificates (tests/fixtures/make_certs.sh).
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
export const CA_FILE = `${FIXTURES}tls_ca.pem`;
export const CERT_FILE = `${FIXTURES}tls_server.pem`;
export const KEY_FILE = `${FIXTURES}tls_server.key`;
export const TLS = {
  cert: Deno.readTextFileSync(CERT_FILE),
  key: Deno.readTextFileSync(KEY_FILE),
};

// The replies to three accepted lines (MAIL, RCPT or a message's end), DATA,
// a message and QUIT.
export const TRANSACTION_REPLIES = [
  "250 OK",
  "250 OK",
  "250 OK",
  "354 End data with <CR><LF>.<CR><LF>",
  "250 OK",
  "221 Bye",
];

/** Opens a session, checks the greeting, runs `lines` and returns replies. */
export async function converse(
  port: number,
  lines: string[],
): Promise<string[][]> {
  const client = await RawClient.open(port);
  try {
    const greeting = await client.reply();
    assert.match(greeting[0]!, /^220 \S+ asyncore SMTP server version/);
    const replies: string[][] = [];
    for (const line of lines) replies.push(await client.command(line));
    return replies;
  } finally {
    client.close();
  }
}

/** The messages in Maildir `dir`'s new/, by sender; tmp/ must be empty. */
export async function stored(dir: string): Promise<Map<string, Uint8Array>> {
  for await (const entry of Deno.readDir(`${dir}/tmp`)) {
    assert.fail(`a temporary file is left: ${entry.name}`);
  }
  const files = new Map<string, Uint8Array>();
  for await (const entry of Deno.readDir(`${dir}/new`)) {
    const data = await Deno.readFile(`${dir}/new/${entry.name}`);
    const from = /X-MailFrom: (.*)\n/.exec(
      decoder.decode(data.subarray(0, 4096)),
    );
    assert.ok(from, `no X-MailFrom in ${entry.name}`);
    files.set(from[1]!, data);
  }
  return files;
}

export function header(mailfrom: string, rcpttos: string[]): string {
  return `X-Peer: 127.0.0.1\nX-MailFrom: ${mailfrom}\nX-RcptTo: ${
    rcpttos.join(", ")
  }\n`;
}

/** Runs swaks as `swaks@example.com` against the server on `port`. */
export function swaks(
  port: number,
  args: string[],
): Promise<Deno.CommandOutput> {
  return new Deno.Command("swaks", {
    args: [
      "--server",
      `127.0.0.1:${port}`,
      "--from",
      "swaks@example.com",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
}
