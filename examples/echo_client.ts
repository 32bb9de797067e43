/**
 * A client for the echo servers (`examples/echo_server.ts`, and
 * `bench/echo_server.ts` for TLS): sends what it reads from standard input
 * and prints the echoed replies. Standard input is read through a
 * `FileDispatcher`, so the terminal, the socket and standard output share one
 * loop, as Python's `asyncore.file_dispatcher` lets them.
 *
 *     deno run -A examples/echo_client.ts [--tls] [--ca PEM] [PORT] [HOST]
 *
 * PORT defaults to 8007, HOST to 127.0.0.1. `--tls` connects over TLS,
 * trusting the system's roots, or with `--ca` the certificates in PEM. Exits with 0 once standard input
 * ends and every byte sent has come back, with 1 when the connection fails.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  DispatcherWithSend,
  familyOf,
  FileDispatcher,
  loop,
  type TlsOptions,
} from "@asyncore/asyncore";
import { STDOUT_MARK as MARK, StdoutDispatcher } from "./_stdout.ts";

class EchoClient extends DispatcherWithSend {
  sent = 0;
  received = 0;
  inputDone = false;
  error: unknown = null;
  readonly out = new StdoutDispatcher();
  input: StdinReader | null = null;

  constructor(host: string, port: number, tls: boolean | TlsOptions = false) {
    super();
    this.create_socket(familyOf([host, port]));
    this.connect([host, port], { tls });
  }

  override handle_connect(): void {}

  override readable(): boolean {
    return this.out.pending < MARK;
  }

  override handle_read(): void {
    const data = this.recv(8192);
    if (data.length === 0) return;
    this.received += data.length;
    this.out.send(data);
    this.#finishIfDone();
  }

  /** Sends a chunk of standard input. */
  forward(data: Uint8Array): void {
    this.sent += data.length;
    this.send(data);
  }

  /** Standard input ended: finish once the last reply is in. */
  endOfInput(): void {
    this.inputDone = true;
    this.#finishIfDone();
  }

  #finishIfDone(): void {
    if (this.inputDone && this.received >= this.sent) this.handle_close();
  }

  // The server went away (or we are done): stop reading input as well.
  override handle_close(): void {
    this.close();
    this.input?.close();
    this.out.close_when_done();
  }

  override handle_error(error: unknown): void {
    this.error = error;
    this.handle_close();
  }
}

class StdinReader extends FileDispatcher {
  readonly client: EchoClient;

  constructor(client: EchoClient) {
    super(Deno.stdin);
    this.client = client;
    client.input = this;
  }

  // Read no more input while the socket is behind.
  override readable(): boolean {
    return this.client.out_buffer.length < MARK;
  }

  override writable(): boolean {
    return false;
  }

  override handle_read(): void {
    const data = this.recv(8192);
    if (data.length > 0) this.client.forward(data);
  }

  override handle_close(): void {
    this.close();
    this.client.endOfInput();
  }
}

if (import.meta.main) {
  let parsed;
  let caCerts: string[] | undefined;
  try {
    parsed = parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: { tls: { type: "boolean" }, ca: { type: "string" } },
    });
    if (parsed.values.ca !== undefined) {
      caCerts = [Deno.readTextFileSync(parsed.values.ca)];
    }
  } catch (error) {
    console.error(`echo_client: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const { values, positionals } = parsed;
  const port = Number(positionals[0] ?? 8007);
  const host = positionals[1] ?? "127.0.0.1";
  const tls = caCerts ? { caCerts } : values.tls === true;
  const client = new EchoClient(host, port, tls);
  new StdinReader(client);
  await loop();
  if (client.error !== null) {
    const reason = client.error instanceof Error
      ? client.error.message
      : String(client.error);
    console.error(`echo_client: cannot talk to ${host}:${port}: ${reason}`);
    Deno.exit(1);
  }
}
