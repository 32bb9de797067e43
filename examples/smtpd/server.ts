/**
 * {@linkcode SMTPServer}: Python 3.11's `smtpd.SMTPServer`, a listening
 * {@linkcode Dispatcher} that starts an {@linkcode SMTPChannel} per client and
 * hands every message to {@linkcode SMTPServer.process_message}.
 *
 * @module
 */

import {
  type Address,
  Dispatcher,
  familyOf,
  type HookResult,
  socket_map,
  type SocketMap,
  type TlsServerOptions,
} from "@asyncore/asyncore";
import {
  SMTPChannel,
  type SMTPChannelOptions,
  TIMEOUT_DEFAULT,
} from "./channel.ts";
import { smtpSettings } from "./_options.ts";

/**
 * A message as `process_message()` gets it: bytes, or a string when the
 * server was made with `decode_data`.
 */
export type MessageData = Uint8Array | string;

/**
 * What `process_message()` gets besides the envelope (Python's `**kwargs`):
 * the upper-cased parameters of MAIL and of the last RCPT. Empty when the
 * server was made with `decode_data`, as in Python.
 */
export interface ProcessMessageOptions {
  /** The MAIL parameters, e.g. `["BODY=8BITMIME", "SIZE=1024"]`. */
  mail_options?: string[];
  /** The parameters of the last RCPT command. */
  rcpt_options?: string[];
}

/**
 * What `process_message()` returns: nothing (or `null`, `""`) for
 * `250 OK`, or the reply line to send, e.g. `"550 No such user"`; or a
 * promise of either.
 */
export type ProcessMessageResult =
  | string
  | null
  | undefined
  | void
  | PromiseLike<string | null | undefined | void>;

/** Options of {@linkcode SMTPServer}: what it passes to each channel. */
export type SMTPServerOptions = SMTPChannelOptions;

/** A channel class an {@linkcode SMTPServer} can start for each client. */
export type SMTPChannelClass = new (
  server: SMTPServer,
  conn: Deno.Conn,
  options?: SMTPChannelOptions,
) => SMTPChannel;

/**
 * Python 3.11's `smtpd.SMTPServer`: listens on `localaddr`, speaks SMTP to
 * every client through {@linkcode SMTPServer.channel_class}, and calls
 * {@linkcode SMTPServer.process_message} with each message received.
 * Subclass it and override `process_message()`; run it with `loop()`.
 *
 * Python's constructor also takes the `remoteaddr` of its relaying
 * `PureProxy`; there is no proxy here, so there is no such argument.
 *
 * @example Collect messages in memory
 * ```ts
 * import { close_all, loop } from "@asyncore/asyncore";
 * import { type MessageData, SMTPServer } from "./mod.ts";
 *
 * class Inbox extends SMTPServer {
 *   messages: [string, string[], MessageData][] = [];
 *   override process_message(
 *     _peer: unknown,
 *     mailfrom: string,
 *     rcpttos: string[],
 *     data: MessageData,
 *   ): void {
 *     this.messages.push([mailfrom, rcpttos, data]);
 *   }
 * }
 *
 * const server = new Inbox(["127.0.0.1", 0]);
 * const [, port] = server.getsockname() as [string, number];
 * const stop = new AbortController();
 * const running = loop({ signal: stop.signal });
 * // ... clients deliver mail to 127.0.0.1:port ...
 * stop.abort();
 * await running;
 * close_all();
 * ```
 */
export class SMTPServer extends Dispatcher {
  /**
   * The class each accepted connection is wrapped in; set a subclass of
   * {@linkcode SMTPChannel} to add commands.
   *
   * @default {SMTPChannel}
   */
  channel_class: SMTPChannelClass = SMTPChannel;
  /** The largest message accepted, in bytes; `0` or `null`: no limit. */
  data_size_limit: number | null;
  /** Whether SMTPUTF8 is offered. */
  enable_SMTPUTF8: boolean;
  /** Whether messages are handed over as strings (Python's `_decode_data`). */
  readonly decode_data: boolean;
  /** The certificate and key channels offer STARTTLS with, or `null`. */
  readonly tls: TlsServerOptions | null;
  #map: SocketMap | null;
  // The channels' timeout (the server's own `timeout` is the listener's).
  #timeout: number | null;
  // The channels' other limits.
  #limits: Pick<
    SMTPChannelOptions,
    "commandTimeout" | "dataTimeout" | "maxRecipients" | "maxReplyBuffer"
  >;

  /**
   * Binds `localaddr` (port 0 picks a free port) and listens.
   *
   * @param localaddr `[host, port]`, or a Unix socket path.
   * @param options Size limit, map, SMTPUTF8, decode_data, and the channels'
   * inactivity timeout, deadlines and limits (see
   * {@linkcode SMTPChannelOptions}).
   * @throws {TypeError} If an option has the wrong type, or `decode_data`
   * and `enable_SMTPUTF8` are both set.
   * @throws {RangeError} If `data_size_limit` or `maxReplyBuffer` is not a
   * non-negative integer, `maxRecipients` not a positive one, or a timeout
   * not a positive number.
   * @throws {Deno.errors.AddrInUse} If the address is taken (and Deno's
   * other bind errors).
   */
  constructor(localaddr: Address, options: SMTPServerOptions = {}) {
    const settings = smtpSettings(options, "create SMTPServer");
    super(null, options.map ?? null);
    this.#map = options.map ?? null;
    this.data_size_limit = settings.data_size_limit;
    this.enable_SMTPUTF8 = settings.enable_SMTPUTF8;
    this.decode_data = settings.decode_data;
    this.tls = settings.tls;
    this.#timeout = options.timeout === undefined
      ? TIMEOUT_DEFAULT
      : options.timeout;
    this.#limits = {
      commandTimeout: settings.commandTimeout,
      dataTimeout: settings.dataTimeout,
      maxRecipients: settings.maxRecipients,
      maxReplyBuffer: settings.maxReplyBuffer,
    };
    try {
      this.create_socket(familyOf(localaddr));
      this.set_reuse_addr();
      this.bind(localaddr);
      this.listen(5);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /**
   * Starts a {@linkcode SMTPServer.channel_class} for the new client.
   *
   * @param conn The accepted connection.
   * @param _addr The client's address.
   */
  override handle_accepted(conn: Deno.Conn, _addr: Address): HookResult {
    new this.channel_class(this, conn, {
      data_size_limit: this.data_size_limit,
      map: this.#map,
      enable_SMTPUTF8: this.enable_SMTPUTF8,
      decode_data: this.decode_data,
      tls: this.tls,
      timeout: this.#timeout,
      ...this.#limits,
    });
  }

  /**
   * Starts a graceful shutdown: stops accepting, and every session gets
   * `421` and is closed once it is between transactions. A session that is
   * receiving a message finishes it first and gets its reply, so no message
   * is stored without its `250` being sent. The loop ends when the last
   * session has closed; call {@linkcode SMTPServer.abort} if that takes too
   * long.
   *
   * @example Stop within a grace time
   * ```ts
   * import { loop } from "@asyncore/asyncore";
   * import { DebuggingServer } from "./mod.ts";
   *
   * const server = new DebuggingServer(["127.0.0.1", 0]);
   * server.shutdown();
   * const grace = new AbortController();
   * const timer = setTimeout(() => grace.abort(), 10_000);
   * await loop({ signal: grace.signal }); // returns once every session ended
   * clearTimeout(timer);
   * server.abort();
   * ```
   */
  shutdown(): void {
    this.closing = true;
    this.close();
    for (const channel of this.#channels()) {
      if (channel.smtp_state !== SMTPChannel.DATA) channel.end_session();
    }
  }

  /**
   * Closes, without a reply, the sessions still receiving a message after
   * {@linkcode SMTPServer.shutdown} (their messages are dropped, not
   * stored). Sessions whose message is already being stored
   * ({@linkcode SMTPChannel.delivering}) get their reply and `421` first.
   */
  abort(): void {
    for (const channel of this.#channels()) {
      if (!channel.delivering) channel.close();
    }
  }

  // This server's sessions.
  *#channels(): Generator<SMTPChannel> {
    for (const dispatcher of [...(this.#map ?? socket_map).values()]) {
      if (
        dispatcher instanceof SMTPChannel && dispatcher.smtp_server === this
      ) yield dispatcher;
    }
  }

  /**
   * Called with every message received; override it. Return nothing for
   * `250 OK`, or the reply to send instead; a promise of either holds the
   * session (and its input) until it settles. A throw or rejection reaches
   * the channel's `handle_error()`, which by default logs it and closes the
   * connection without a reply, as in Python.
   *
   * @param peer The client's address.
   * @param mailfrom The sender given with MAIL (`"<>"` for the null sender).
   * @param rcpttos The recipients given with RCPT.
   * @param data The message after dot-unstuffing, its lines joined by LF
   * without a final line break, as Python hands it over.
   * @param options The MAIL and RCPT parameters.
   * @returns The reply, or nothing for `250 OK`.
   * @throws {Error} Always, unless overridden.
   */
  process_message(
    peer: Address,
    mailfrom: string,
    rcpttos: string[],
    data: MessageData,
    options: ProcessMessageOptions,
  ): ProcessMessageResult;
  process_message(): ProcessMessageResult {
    throw new Error(
      "Cannot process message: process_message() must be overridden in a subclass",
    );
  }
}
