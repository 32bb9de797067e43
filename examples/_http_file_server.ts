/**
 * A small HTTP/1.0 file server on `Dispatcher`, for the demo: each
 * connection reads one `GET` (or `HEAD`) request, answers it with a file under
 * the server's root directory, and closes, as HTTP/1.0 does.
 *
 * @module
 */

import {
  type Address,
  Dispatcher,
  DispatcherWithSend,
  familyOf,
} from "@asyncore/asyncore";

// Requests larger than this without a blank line are refused.
const MAX_REQUEST = 8192;

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  txt: "text/plain; charset=utf-8",
  json: "application/json",
  css: "text/css",
  js: "text/javascript",
};

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  501: "Not Implemented",
};

/** Listens on `address` and serves the files under `root`. */
export class HTTPFileServer extends Dispatcher {
  readonly root: string;

  constructor(root: string, address: Address = ["127.0.0.1", 0]) {
    super();
    this.root = root;
    this.create_socket(familyOf(address));
    this.set_reuse_addr();
    this.bind(address);
    this.listen(128);
  }

  override handle_accepted(sock: Deno.Conn): void {
    new HTTPFileHandler(sock, this.root);
  }
}

class HTTPFileHandler extends DispatcherWithSend {
  readonly root: string;
  #request = "";

  constructor(sock: Deno.Conn, root: string) {
    super(sock);
    this.root = root;
  }

  // One request per connection: stop reading once it is answered.
  override readable(): boolean {
    return !this.closing;
  }

  override handle_read(): void {
    const data = this.recv(8192);
    if (data.length === 0) return;
    // Header bytes are ASCII; latin1 keeps every byte one character.
    this.#request += new TextDecoder("latin1").decode(data);
    const end = this.#request.indexOf("\r\n\r\n");
    if (end >= 0) this.#answer(this.#request.slice(0, end));
    else if (this.#request.length > MAX_REQUEST) this.#fail(400);
  }

  #answer(head: string): void {
    const [method, target = ""] = head.split("\r\n", 1)[0]!.split(" ");
    if (method !== "GET" && method !== "HEAD") return this.#fail(501);
    const body = this.#read(target);
    if (body === null) return this.#fail(404);
    const extension = target.endsWith("/") ? "html" : target.split(".").pop();
    const type = TYPES[extension ?? ""] ?? "application/octet-stream";
    this.#reply(200, body, type, method === "HEAD");
  }

  // A file's bytes, or null when the path leaves the root or does not exist.
  // The read is synchronous: a demo's small files cost less than a round
  // trip through an async hook.
  #read(target: string): Uint8Array | null {
    let path: string;
    try {
      path = decodeURIComponent(new URL(target, "http://x").pathname);
    } catch {
      return null;
    }
    const parts = path.split("/").filter((part) => part !== "");
    if (parts.some((part) => part === ".." || part.includes("\0"))) {
      return null;
    }
    if (path.endsWith("/")) parts.push("index.html");
    try {
      return Deno.readFileSync(`${this.root}/${parts.join("/")}`);
    } catch {
      return null;
    }
  }

  #fail(status: number): void {
    const text = new TextEncoder().encode(`${status} ${REASONS[status]}\n`);
    this.#reply(status, text, TYPES.txt!, false);
  }

  #reply(status: number, body: Uint8Array, type: string, headOnly: boolean) {
    this.send(
      new TextEncoder().encode(
        `HTTP/1.0 ${status} ${REASONS[status]}\r\nServer: asyncore-deno\r\n` +
          `Content-Type: ${type}\r\nContent-Length: ${body.length}\r\n\r\n`,
      ),
    );
    if (!headOnly) this.send(body);
    this.closing = true;
    this.#closeIfSent();
  }

  override handle_write(): void {
    this.initiate_send();
    this.#closeIfSent();
  }

  // close() still delivers what send() handed to the connection.
  #closeIfSent(): void {
    if (this.closing && this.out_buffer.length === 0) this.close();
  }

  override handle_close(): void {
    this.close();
  }
}
