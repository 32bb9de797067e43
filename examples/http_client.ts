/**
 * The classic asyncore example, Python's documented `HTTPClient`, ported line
 * by line: connect, send one HTTP/1.0 request, copy the raw response to
 * standard output until the server closes.
 *
 *     deno run -A examples/http_client.ts [--ca PEM] [URL]
 *
 * URL defaults to `http://127.0.0.1:8000/`; an `https://` URL is fetched
 * over TLS, checking the server's certificate against the system's roots, or
 * against the certificates in the PEM file given with `--ca` (a private or
 * test CA; a file without a PEM certificate in it is refused). The
 * response, status line and headers included, goes to stdout byte for byte.
 * Exit codes: 0 when the server closed the connection, 1 when the connection
 * (or the TLS handshake) failed, 2 for a bad URL or option.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  Dispatcher,
  familyOf,
  loop,
  type TlsOptions,
} from "@asyncore/asyncore";
import { STDOUT_MARK, StdoutDispatcher } from "./_stdout.ts";

class HTTPClient extends Dispatcher {
  buffer: Uint8Array;
  error: unknown = null;
  reached = false;
  readonly out: StdoutDispatcher;

  constructor(
    host: string,
    port: number,
    path: string,
    hostHeader: string,
    tls: boolean | TlsOptions = false,
  ) {
    super();
    this.create_socket(familyOf([host, port]));
    this.connect([host, port], { tls });
    this.buffer = new TextEncoder().encode(
      `GET ${path} HTTP/1.0\r\nHost: ${hostHeader}\r\n\r\n`,
    );
    this.out = new StdoutDispatcher();
  }

  override handle_connect(): void {
    this.reached = true;
  }

  override handle_close(): void {
    this.close();
    this.out.close_when_done();
  }

  // Python prints each chunk; we copy it to stdout, and stop reading while
  // stdout is behind so a slow reader is not buffered in memory.
  override readable(): boolean {
    return this.out.pending < STDOUT_MARK;
  }

  override handle_read(): void {
    const data = this.recv(8192);
    if (data.length > 0) this.out.send(data);
  }

  override writable(): boolean {
    return this.buffer.length > 0;
  }

  override handle_write(): void {
    const sent = this.send(this.buffer);
    this.buffer = this.buffer.subarray(sent);
  }

  // Mostly a failed connect: keep the error for the exit code instead of
  // logging it to stdout, which carries the response.
  override handle_error(error: unknown): void {
    this.error = error;
    this.close();
    this.out.close_when_done();
  }
}

/** Where a URL points: the parts the request needs. */
interface Target {
  host: string;
  port: number;
  path: string;
  hostHeader: string;
  tls: boolean;
}

// Deno skips what is not PEM in caCerts without a word, and the
// certificate would then be checked against nothing the user meant.
function readCa(path: string): string {
  const pem = Deno.readTextFileSync(path);
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new TypeError(
      `Cannot use --ca: "${path}" holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
    );
  }
  return pem;
}

function parseTarget(text: string): Target {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`Cannot fetch: "${text}" is not a valid URL`);
  }
  const tls = url.protocol === "https:";
  if (url.protocol !== "http:" && !tls) {
    throw new TypeError(
      `Cannot fetch: "${text}" is not an http:// or https:// URL`,
    );
  }
  return {
    // URL keeps IPv6 hosts in brackets; connect() wants the bare address.
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port === "" ? (tls ? 443 : 80) : Number(url.port),
    tls,
    path: `${url.pathname}${url.search}`,
    hostHeader: url.host,
  };
}

if (import.meta.main) {
  let target: Target;
  let caCerts: string[] | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: Deno.args,
      options: { ca: { type: "string" } },
      allowPositionals: true,
    });
    target = parseTarget(positionals[0] ?? "http://127.0.0.1:8000/");
    if (values.ca !== undefined) caCerts = [readCa(values.ca)];
  } catch (error) {
    console.error(`http_client: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const { host, port, path, hostHeader, tls } = target;
  const client = new HTTPClient(
    host,
    port,
    path,
    hostHeader,
    tls && (caCerts ? { caCerts } : true),
  );
  await loop();
  if (client.error !== null) {
    const reason = client.error instanceof Error
      ? client.error.message
      : String(client.error);
    console.error(
      client.reached
        ? `http_client: connection to ${hostHeader} failed: ${reason}`
        : `http_client: cannot connect to ${hostHeader}: ${reason}`,
    );
    Deno.exit(1);
  }
}
