/**
 * A line-based chat room on `AsyncChat`, the classic asynchat example: every
 * line a client sends goes to everyone else as `name: text`.
 *
 *     deno run -A examples/chat_server.ts [PORT] [HOST] [--idle-timeout SECONDS]
 *
 * PORT defaults to 8008 (0 picks a free port), HOST to 127.0.0.1. Prints
 * `listening on HOST:PORT` once bound; SIGINT or SIGTERM closes every channel
 * and exits. Try it with two terminals running `nc 127.0.0.1 8008`.
 *
 * Commands: `/nick NAME` renames you (everyone is told), `/quit` leaves.
 * Lines end with `\n` (a `\r` before it is dropped, for telnet).
 *
 * A member who does not read what the room sends is dropped once more than
 * {@linkcode MAX_QUEUE} bytes wait for them, and the room is told: one
 * stalled client can neither exhaust the server's memory nor hold the room.
 * A member who sends no line for {@linkcode IDLE_TIMEOUT} seconds (or
 * `--idle-timeout`; 0: never) is dropped too, and the room is told.
 *
 * The classes are exported, so the room can be reused:
 *
 * ```ts ignore
 * import { ChatServer } from "./chat_server.ts";
 * import { loop } from "@asyncore/asyncore";
 *
 * const server = new ChatServer("127.0.0.1", 0);
 * console.log(server.getsockname());
 * await loop();
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  AsyncChat,
  Dispatcher,
  familyOf,
  type TimerHandle,
} from "@asyncore/asyncore";
import { serveUntilSignal } from "./_serve.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Longest line accepted; the rest of a longer line is dropped. */
export const MAX_LINE = 4096;
/** Bytes queued for one member above which the member is dropped. */
export const MAX_QUEUE = 1024 * 1024;
/** Seconds without a line from a member before the member is dropped. */
export const IDLE_TIMEOUT = 30 * 60;
/** What a name may look like: 1 to 32 letters, digits, `_`, `-` or `.`. */
const NAME = /^[\p{L}\p{N}_.-]{1,32}$/u;

/**
 * One connected client. `AsyncChat` does the framing: it calls
 * `collect_incoming_data()` with the bytes of a line and `found_terminator()`
 * at each `\n`; `push()` queues replies in order.
 */
export class ChatSession extends AsyncChat {
  /** The name others see; `guestN` until `/nick`. */
  name: string;
  readonly server: ChatServer;
  #size = 0;
  #tooLong = false;
  // Restarted by every line the member sends.
  #idle: TimerHandle | null = null;

  /**
   * Wraps an accepted connection and joins the room.
   *
   * @param server The room.
   * @param conn The client's connection.
   */
  constructor(server: ChatServer, conn: Deno.Conn) {
    super(conn);
    this.server = server;
    this.name = server.guestName();
    this.set_terminator("\n");
    this.say(`welcome, ${this.name} (/nick NAME to rename, /quit to leave)`);
    server.join(this);
    const seconds = server.idleTimeout;
    if (seconds !== null) {
      this.#idle = this.call_later(
        seconds,
        () => server.drop(this, `idle for ${seconds} s`),
      );
    }
  }

  /** Sends one line to this client. */
  say(line: string): void {
    this.push(encoder.encode(line + "\n"));
  }

  /**
   * Queues `data`; a member whose queue passes {@linkcode MAX_QUEUE} is
   * dropped instead.
   */
  override push(data: Uint8Array): void {
    super.push(data);
    if (this.bufferedAmount > MAX_QUEUE) this.server.drop(this);
  }

  // Gather the pieces of a line; a line over MAX_LINE is cut, so one client
  // cannot make the server hold an endless line in memory.
  override collect_incoming_data(data: Uint8Array): void {
    if (this.#size + data.length > MAX_LINE) {
      this.#tooLong = true;
      data = data.subarray(0, MAX_LINE - this.#size);
    }
    this.#size += data.length;
    if (data.length > 0) this._collect_incoming_data(data);
  }

  // A whole line arrived.
  override found_terminator(): void {
    const line = decoder.decode(this._get_data()).replace(/\r$/, "");
    this.#size = 0;
    this.#idle?.reset();
    // After /quit, whatever else the client sends is ignored.
    if (!this.server.sessions.has(this)) return;
    if (this.#tooLong) {
      this.#tooLong = false;
      this.say(`* line too long (over ${MAX_LINE} bytes), not sent`);
      return;
    }
    if (line.startsWith("/")) this.command(line);
    else if (line.trim() !== "") {
      this.server.broadcast(`${this.name}: ${line}`, this);
    }
  }

  /** Runs a `/command` line. */
  command(line: string): void {
    const [verb = "", ...args] = line.split(/\s+/);
    if (verb === "/nick") {
      const name = args.join(" ");
      if (!NAME.test(name)) {
        this.say("* usage: /nick NAME (1-32 letters, digits, _ . -)");
      } else if (this.server.find(name) !== undefined) {
        this.say(`* the name ${name} is taken`);
      } else {
        const old = this.name;
        this.name = name;
        this.server.broadcast(`* ${old} is now ${name}`);
      }
    } else if (verb === "/quit") {
      this.say(`* bye, ${this.name}`);
      this.server.leave(this);
      // Close once "bye" is sent; nothing from the room is queued after it.
      this.close_when_done();
    } else {
      this.say(`* unknown command ${verb} (try /nick NAME or /quit)`);
    }
  }

  // The client went away (or close_when_done finished): leave the room.
  override handle_close(): void {
    this.server.leave(this);
    this.close();
  }
}

/** The listening socket and the room: who is in it, and broadcasting. */
export class ChatServer extends Dispatcher {
  /** Everyone in the room, in order of arrival. */
  readonly sessions: Set<ChatSession> = new Set();
  /** Seconds without a line before a member is dropped; `null`: never. */
  readonly idleTimeout: number | null;
  #guests = 0;

  /**
   * Listens on `host`:`port` (0 picks a free port).
   *
   * @param host The address to bind.
   * @param port The port to bind.
   * @param idleTimeout Seconds without a line before a member is dropped.
   */
  constructor(
    host: string,
    port: number,
    idleTimeout: number | null = IDLE_TIMEOUT,
  ) {
    super();
    this.idleTimeout = idleTimeout;
    this.create_socket(familyOf([host, port]));
    this.set_reuse_addr();
    this.bind([host, port]);
    this.listen(128);
  }

  override handle_accepted(conn: Deno.Conn): void {
    new ChatSession(this, conn);
  }

  /** A fresh default name: `guest1`, `guest2`, … */
  guestName(): string {
    let name: string;
    do name = `guest${++this.#guests}`; while (this.find(name) !== undefined);
    return name;
  }

  /** The session called `name`, if any. */
  find(name: string): ChatSession | undefined {
    for (const session of this.sessions) {
      if (session.name === name) return session;
    }
  }

  /** Adds `session` to the room and tells the others. */
  join(session: ChatSession): void {
    this.broadcast(`* ${session.name} joined`);
    this.sessions.add(session);
  }

  /** Removes `session` (once) and tells the others. */
  leave(session: ChatSession): void {
    if (this.sessions.delete(session)) {
      this.broadcast(`* ${session.name} left`);
    }
  }

  /** Closes a member who does not read (or is idle), and tells the room. */
  drop(
    session: ChatSession,
    reason: string = `over ${MAX_QUEUE} bytes unread`,
  ): void {
    if (!this.sessions.delete(session)) return;
    // What is queued would wait for a reader that never comes.
    session.discard_buffers();
    session.close();
    this.broadcast(`* ${session.name} was dropped (${reason})`);
  }

  /** Sends `line` to everyone in the room but `except`. */
  broadcast(line: string, except?: ChatSession): void {
    const data = encoder.encode(line + "\n");
    for (const session of this.sessions) {
      if (session !== except) session.push(data);
    }
  }
}

function usage(): never {
  console.error("usage: chat_server.ts [PORT] [HOST] [--idle-timeout SECONDS]");
  Deno.exit(2);
}

if (import.meta.main) {
  let args;
  try {
    args = parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: { "idle-timeout": { type: "string" } },
    });
  } catch {
    usage();
  }
  const { values, positionals } = args;
  const port = Number(positionals[0] ?? 8008);
  const host = positionals[1] ?? "127.0.0.1";
  const idle = Number(values["idle-timeout"] ?? IDLE_TIMEOUT);
  if (
    !Number.isInteger(port) || port < 0 || port > 65535 ||
    !Number.isFinite(idle) || idle < 0
  ) usage();
  const server = new ChatServer(host, port, idle === 0 ? null : idle);
  await serveUntilSignal(server.getsockname());
}
