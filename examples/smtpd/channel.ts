/**
 * {@linkcode SMTPChannel}: one SMTP session, Python 3.11's
 * `smtpd.SMTPChannel` on {@linkcode AsyncChat}.
 *
 * @module
 */

import {
  type Address,
  AsyncChat,
  type HookResult,
  type SocketMap,
  type TimerHandle,
  type TlsServerOptions,
} from "@asyncore/asyncore";
import { parseAddress, parseParams, stripKeyword } from "./_address.ts";
import { ByteBuffer } from "./_buffer.ts";
import { getfqdn } from "./_fqdn.ts";
import { smtpSettings } from "./_options.ts";
import type {
  MessageData,
  ProcessMessageOptions,
  SMTPServer,
} from "./server.ts";

export {
  COMMAND_TIMEOUT_DEFAULT,
  DATA_SIZE_DEFAULT,
  DATA_TIMEOUT_DEFAULT,
  MAX_RECIPIENTS_DEFAULT,
  MAX_REPLY_BUFFER_DEFAULT,
} from "./_options.ts";

/** The software name the `220` greeting ends with (Python's `__version__`). */
export const SMTPD_VERSION = "asyncore SMTP server version 0.1";

/**
 * Seconds a channel waits for the client by default: RFC 5321 §4.5.3.2.7
 * asks a server to wait at least 5 minutes for the next command.
 */
export const TIMEOUT_DEFAULT = 300;

/** Options of {@linkcode SMTPChannel}; the server passes its own on. */
export interface SMTPChannelOptions {
  /**
   * The largest message accepted, in bytes (advertised as `SIZE`); `0` or
   * `null` for no limit.
   *
   * @default {DATA_SIZE_DEFAULT}
   */
  data_size_limit?: number | null;
  /**
   * The socket map the channel joins.
   *
   * @default {socket_map}
   */
  map?: SocketMap | null;
  /**
   * Offer the SMTPUTF8 extension (RFC 6531).
   *
   * @default {false}
   */
  enable_SMTPUTF8?: boolean;
  /**
   * Hand the message to `process_message()` as a string instead of bytes
   * (and offer no 8BITMIME); cannot be combined with `enable_SMTPUTF8`.
   *
   * @default {false}
   */
  decode_data?: boolean;
  /**
   * Offer STARTTLS (RFC 3207) with this certificate and key; Python's smtpd
   * had no TLS.
   *
   * @default {null}
   */
  tls?: TlsServerOptions | null;
  /**
   * Seconds without a byte from or to the client after which the channel
   * replies `421` and closes (RFC 5321 §4.5.3.2); `null` for never.
   *
   * @default {TIMEOUT_DEFAULT}
   */
  timeout?: number | null;
  /**
   * Seconds a command line may take from its first byte to its CRLF; then
   * the channel replies `421` and closes, however steadily the bytes come
   * (each byte restarts `timeout`, not this). `null` for no limit.
   *
   * @default {COMMAND_TIMEOUT_DEFAULT}
   */
  commandTimeout?: number | null;
  /**
   * Seconds a message may take from the `354` to its final dot; then the
   * channel replies `421` and closes (the message is dropped). `null` for no
   * limit.
   *
   * @default {DATA_TIMEOUT_DEFAULT}
   */
  dataTimeout?: number | null;
  /**
   * Recipients one transaction may name; `RCPT` past them gets `452 Error:
   * too many recipients` (RFC 5321 §4.5.3.1.10), and a client sends the
   * rest in another transaction. RFC 5321 §4.5.3.1.8 asks for at least 100.
   *
   * @default {MAX_RECIPIENTS_DEFAULT}
   */
  maxRecipients?: number;
  /**
   * Bytes of replies not yet sent past which the channel stops reading
   * commands until the client reads its replies (backpressure); a client
   * that pipelines without reading then holds at most this much, plus the
   * replies to one read of its input (64 KiB at most), and waits in the
   * kernel, until `timeout` lets it go. `0` stops reading whenever a reply
   * is unsent.
   *
   * @default {MAX_REPLY_BUFFER_DEFAULT}
   */
  maxReplyBuffer?: number;
}

const CRLF = new Uint8Array([13, 10]);
const DOT = 0x2e;
const LF = 0x0a;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder();
const utf8 = new TextEncoder();

function joinPieces(pieces: Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const joined = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const piece of pieces) {
    joined.set(piece, offset);
    offset += piece.length;
  }
  return joined;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value != null &&
    typeof (value as PromiseLike<unknown>).then === "function";
}

/**
 * One SMTP session (RFC 5321) with a client, as Python 3.11's
 * `smtpd.SMTPChannel`: it greets, answers HELO, EHLO, MAIL, RCPT, DATA, RSET,
 * NOOP, QUIT, VRFY, EXPN and HELP with Python's reply codes and texts, and
 * hands each message to its server's `process_message()`.
 *
 * Commands are dispatched to `smtp_<COMMAND>(arg)` methods, so a subclass
 * adds a command by adding a method (set it as the server's
 * `channel_class`). Such a method, like `process_message()`, may return a
 * promise: input waits until it settles, so replies stay in order.
 *
 * Where Python's channel raises on client input and drops the connection,
 * this one answers instead: an address its parser rejects gets a `501`, a
 * command line that is not UTF-8 a `500`, and non-ASCII text echoed in a
 * reply is sent as `?` unless the client asked for SMTPUTF8. After a `552`
 * for too much data the channel is ready for the next command (Python's
 * stays in DATA). A message that is just `.` right after `354` is an empty
 * message, as RFC 5321 has it.
 *
 * @example A channel that also answers a custom command
 * ```ts
 * import { SMTPChannel, SMTPServer } from "./mod.ts";
 *
 * class PingChannel extends SMTPChannel {
 *   smtp_PING(_arg: string | null): void {
 *     this.push("250 PONG");
 *   }
 * }
 *
 * class PingServer extends SMTPServer {
 *   override channel_class = PingChannel;
 *   override process_message(): void {}
 * }
 * ```
 */
export class SMTPChannel extends AsyncChat {
  /** {@linkcode SMTPChannel.smtp_state} while reading commands. */
  static readonly COMMAND = 0;
  /** {@linkcode SMTPChannel.smtp_state} while reading message data. */
  static readonly DATA = 1;

  /**
   * The longest command line, in bytes without its CRLF (RFC 5321: 512).
   *
   * @default {512}
   */
  command_size_limit = 512;
  /**
   * Longer limits for single commands, set by EHLO: MAIL gets 26 more for
   * `SIZE=` and 10 more for `SMTPUTF8`, as Python computes them.
   */
  command_size_limits: Map<string, number> = new Map();
  /** The server that accepted this connection. */
  smtp_server: SMTPServer;
  /** The accepted connection. */
  conn: Deno.Conn;
  /** The largest message accepted, in bytes; `0` or `null`: no limit. */
  data_size_limit: number | null;
  /** Whether SMTPUTF8 is offered. */
  enable_SMTPUTF8: boolean;
  /** Whether messages are handed over as strings (Python's `_decode_data`). */
  readonly decode_data: boolean;
  /** The certificate and key STARTTLS upgrades with; `null`: not offered. */
  readonly tls: TlsServerOptions | null;
  /** Whether the client said STARTTLS (and the session is encrypted). */
  secure = false;
  /** The name the client gave in HELO or EHLO; `""` before that. */
  seen_greeting = "";
  /** Whether the client said EHLO. */
  extended_smtp = false;
  /** The name this server greets with. */
  fqdn: string;
  /** The client's address. */
  peer: Address;
  /** {@linkcode SMTPChannel.COMMAND} or {@linkcode SMTPChannel.DATA}. */
  smtp_state: number = SMTPChannel.COMMAND;
  /** The sender of the current transaction, or `null` before MAIL. */
  mailfrom: string | null = null;
  /** The recipients of the current transaction. */
  rcpttos: string[] = [];
  /** Whether the current transaction asked for SMTPUTF8. */
  require_SMTPUTF8 = false;
  /** Bytes received of the current command line, or of the message data. */
  num_bytes = 0;
  /** The last message received (after dot-unstuffing, lines joined by LF). */
  received_data: MessageData = "";
  /** The pieces of the command line being received. */
  received_lines: Uint8Array[] = [];
  /** The parameters of the last MAIL command, upper-cased. */
  mail_options: string[] = [];
  /** The parameters of the last RCPT command, upper-cased. */
  rcpt_options: string[] = [];
  // The message being received, and where the current data line stands.
  #message: ByteBuffer | null = null;
  #dataLines = 0;
  #lineBytes = 0;
  #lineHead = -1;
  // Set from the final dot until process_message() settles.
  #delivering = false;
  // Set once a 421 (shutdown or timeout) is queued: nothing more is answered.
  #ending = false;
  // performance.now() by which the command line or message being received
  // must be whole, or Infinity; checked by one timer, moved lazily.
  #due = Infinity;
  #deadline: TimerHandle | null = null;
  // performance.now() at which #deadline runs.
  #deadlineAt = Infinity;
  /**
   * Seconds a command line may take from its first byte to its CRLF, or
   * `null`; see {@linkcode SMTPChannelOptions.commandTimeout}.
   */
  commandTimeout: number | null;
  /**
   * Seconds a message may take from the `354` to its final dot, or `null`;
   * see {@linkcode SMTPChannelOptions.dataTimeout}.
   */
  dataTimeout: number | null;
  /**
   * Recipients one transaction may name; see
   * {@linkcode SMTPChannelOptions.maxRecipients}.
   */
  maxRecipients: number;
  /**
   * Bytes of unsent replies past which the channel stops reading; see
   * {@linkcode SMTPChannelOptions.maxReplyBuffer}.
   */
  maxReplyBuffer: number;

  /**
   * Wraps an accepted connection, joins the map and sends the `220`
   * greeting.
   *
   * @param server The server whose `process_message()` gets the messages.
   * @param conn The accepted connection.
   * @param options Size limit, map, SMTPUTF8, decode_data, timeouts and
   * limits.
   * @throws {TypeError} If `decode_data` and `enable_SMTPUTF8` are both set.
   * @throws {RangeError} If `data_size_limit` or `maxReplyBuffer` is not a
   * non-negative integer, `maxRecipients` not a positive one, or
   * `timeout`, `commandTimeout` or `dataTimeout` not a positive number.
   */
  constructor(
    server: SMTPServer,
    conn: Deno.Conn,
    options: SMTPChannelOptions = {},
  ) {
    const settings = smtpSettings(options, "create SMTPChannel");
    super(conn, options.map ?? null);
    this.smtp_server = server;
    this.conn = conn;
    this.data_size_limit = settings.data_size_limit;
    this.enable_SMTPUTF8 = settings.enable_SMTPUTF8;
    this.decode_data = settings.decode_data;
    this.tls = settings.tls;
    this.commandTimeout = settings.commandTimeout;
    this.dataTimeout = settings.dataTimeout;
    this.maxRecipients = settings.maxRecipients;
    this.maxReplyBuffer = settings.maxReplyBuffer;
    this._set_rset_state();
    this.fqdn = getfqdn();
    try {
      this.peer = this.getpeername();
    } catch (error) {
      // The client may be gone already; Python closes quietly then too.
      this.peer = this.addr ?? "";
      this.close();
      if (error instanceof Deno.errors.NotConnected) return;
      throw error;
    }
    this.timeout = options.timeout === undefined
      ? TIMEOUT_DEFAULT
      : options.timeout;
    this.push(`220 ${this.fqdn} ${SMTPD_VERSION}`);
  }

  /**
   * Called once the client has been silent for
   * {@linkcode SMTPChannel.timeout} seconds, in a command or in DATA, or
   * once a command line or a message took longer than
   * {@linkcode SMTPChannel.commandTimeout} or
   * {@linkcode SMTPChannel.dataTimeout}: replies `421 <fqdn> Error: timeout
   * exceeded` and closes once that is sent (or at the next timeout, if the
   * client does not read it). A message being stored is not cut short: its
   * reply still comes first.
   */
  override handle_timeout(): void {
    if (this.#delivering) return;
    if (this.#ending) return this.close();
    this.#ending = true;
    this.push(`421 ${this.fqdn} Error: timeout exceeded`);
    this.close_when_done();
  }

  /**
   * Whether the loop should read: not while an async command or delivery
   * runs, nor while more than {@linkcode SMTPChannel.maxReplyBuffer} bytes
   * of replies wait for the client to read them.
   *
   * @returns Whether to read.
   */
  override readable(): boolean {
    return super.readable() && this.bufferedAmount <= this.maxReplyBuffer;
  }

  // Starts the deadline of a command line or a message: `seconds` from now.
  #startDeadline(seconds: number | null): void {
    if (seconds === null) return;
    this.#due = performance.now() + seconds * 1000;
    if (this.#deadline === null) {
      this.#deadline = this.call_later(seconds, () => this.#onDeadline());
    } else if (!this.#deadline.active || this.#deadlineAt > this.#due) {
      this.#deadline.reset(seconds);
    } else return;
    this.#deadlineAt = this.#due;
  }

  // The timer runs at the earliest deadline it was set for; a line or a
  // message done since (or given more time) just moves it.
  #onDeadline(): void {
    const left = this.#due - performance.now();
    if (left === Infinity) return;
    if (left > 0) {
      this.#deadline!.reset(left / 1000);
      this.#deadlineAt = this.#due;
      return;
    }
    this.#due = Infinity;
    this.handle_timeout();
  }

  /**
   * The longest command line any command may have now.
   *
   * @returns The largest of {@linkcode SMTPChannel.command_size_limit} and
   * the per-command limits.
   */
  get max_command_size_limit(): number {
    return Math.max(
      this.command_size_limit,
      ...this.command_size_limits.values(),
    );
  }

  /** Resets the transaction after a message (Python's helper of that name). */
  _set_post_data_state(): void {
    this.smtp_state = SMTPChannel.COMMAND;
    this.mailfrom = null;
    this.rcpttos = [];
    this.require_SMTPUTF8 = false;
    this.num_bytes = 0;
    this.set_terminator(CRLF);
    this.#message = null;
  }

  /** Resets everything but the greeting (HELO, EHLO, RSET). */
  _set_rset_state(): void {
    this._set_post_data_state();
    this.received_data = "";
    this.received_lines = [];
  }

  /**
   * Sends a reply line: a string gets its CRLF appended (non-ASCII becomes
   * `?` unless the transaction asked for SMTPUTF8); bytes go out as they are.
   *
   * @param msg The reply, e.g. `"250 OK"`.
   * @throws {TypeError} If `msg` is neither a string nor a `Uint8Array`.
   */
  override push(msg: string | Uint8Array): void {
    if (typeof msg !== "string") return super.push(msg);
    const line = this.require_SMTPUTF8
      ? msg
      : msg.replace(/[^\p{ASCII}]/gu, "?");
    super.push(utf8.encode(`${line}\r\n`));
  }

  /**
   * Gathers a piece of the current line. Command lines stop being kept past
   * the command length limit, message data past the size limit; both are
   * still counted.
   *
   * @param data A piece of input.
   */
  override collect_incoming_data(data: Uint8Array): void {
    if (this.smtp_state === SMTPChannel.COMMAND) {
      if (this.#due === Infinity && data.length > 0) {
        this.#startDeadline(this.commandTimeout);
      }
      if (this.num_bytes > this.max_command_size_limit) return;
      this.num_bytes += data.length;
      this.received_lines.push(data);
      return;
    }
    let piece = data;
    if (this.#lineBytes === 0 && data.length > 0) {
      this.#lineHead = data[0]!;
      // RFC 5321 section 4.5.2: a leading dot was doubled by the client.
      if (this.#lineHead === DOT) piece = data.subarray(1);
    }
    this.#lineBytes += data.length;
    this.num_bytes += data.length;
    if (this.#keeping()) this.#message?.append(piece);
  }

  // While a message can still be within the limit; +2: num_bytes already
  // counts the CRLF ending the last line, which belongs to the final dot.
  #keeping(): boolean {
    const limit = this.data_size_limit;
    return !limit || this.num_bytes <= limit + 2;
  }

  /**
   * Handles a complete line: runs a command, or adds a line to the message
   * and, at the final `.`, delivers it.
   *
   * @returns What the command method or `process_message()` returned.
   */
  override found_terminator(): HookResult {
    if (this.smtp_state === SMTPChannel.COMMAND) return this.#command();
    const lineBytes = this.#lineBytes;
    const lineHead = this.#lineHead;
    this.#lineBytes = 0;
    this.#lineHead = -1;
    if (lineBytes !== 1 || lineHead !== DOT) {
      this.num_bytes += 2;
      this.#dataLines++;
      if (this.#keeping()) this.#message?.appendByte(LF);
      return;
    }
    return this.#deliver();
  }

  #command(): HookResult {
    this.#due = Infinity;
    const line = joinPieces(this.received_lines);
    this.received_lines = [];
    const size = this.num_bytes;
    this.num_bytes = 0;
    if (this.smtp_server.closing) return this.end_session();
    let text: string;
    try {
      text = strictUtf8.decode(line);
    } catch {
      text = "";
    }
    if (text === "") {
      this.push("500 Error: bad syntax");
      return;
    }
    const space = text.indexOf(" ");
    const command = (space < 0 ? text : text.slice(0, space)).toUpperCase();
    const arg = space < 0 ? null : text.slice(space + 1).trim();
    const limit = this.extended_smtp
      ? this.command_size_limits.get(command) ?? this.command_size_limit
      : this.command_size_limit;
    if (size > limit) {
      this.push("500 Error: line too long");
      return;
    }
    const method = (this as unknown as Record<string, unknown>)[
      `smtp_${command}`
    ];
    if (typeof method !== "function") {
      this.push(`500 Error: command "${command}" not recognized`);
      return;
    }
    return method.call(this, arg);
  }

  #deliver(): HookResult {
    this.#due = Infinity;
    const limit = this.data_size_limit;
    // Python counts what precedes CRLF.CRLF: not the final dot, nor the CRLF
    // ending the last line.
    const size = this.#dataLines > 0 ? this.num_bytes - 3 : 0;
    if (limit && size > limit) {
      this._set_post_data_state();
      this.push("552 Error: Too much mail data");
      if (this.smtp_server.closing) this.end_session();
      return;
    }
    // Each line was followed by LF; the last one belongs to the final dot.
    const message = this.#message ?? new ByteBuffer();
    if (this.#dataLines > 0) message.truncate(1);
    const bytes = message.bytes();
    const data = this.decode_data ? lenientUtf8.decode(bytes) : bytes;
    this.received_data = data;
    const options: ProcessMessageOptions = this.decode_data ? {} : {
      mail_options: this.mail_options,
      rcpt_options: this.rcpt_options,
    };
    const status = this.smtp_server.process_message(
      this.peer,
      this.mailfrom ?? "",
      this.rcpttos,
      data,
      options,
    );
    if (isThenable(status)) {
      this.#delivering = true;
      return Promise.resolve(status).then((reply) => this.#reply(reply))
        .finally(() => this.#delivering = false);
    }
    this.#reply(status);
  }

  #reply(status: string | null | undefined | void): void {
    this._set_post_data_state();
    this.push(status ? status : "250 OK");
    // A shutdown waited for this message: its reply goes out, then 421.
    if (this.smtp_server.closing) this.end_session();
  }

  /**
   * True from a message's final dot until `process_message()` has settled:
   * the message may be being stored, and its reply is still to come.
   *
   * @returns Whether a delivery is under way.
   */
  get delivering(): boolean {
    return this.#delivering;
  }

  /**
   * Ends the session because the server is shutting down: replies `421`
   * (RFC 5321, section 3.8) and closes once that is written. Later input is
   * not answered. See {@linkcode SMTPServer.shutdown}.
   */
  end_session(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.push(
      `421 ${this.fqdn} Service not available, closing transmission channel`,
    );
    this.close_when_done();
  }

  /**
   * HELO: starts a session (once per connection).
   *
   * @param arg The client's name.
   */
  smtp_HELO(arg: string | null): HookResult {
    if (!arg) return this.push("501 Syntax: HELO hostname");
    // Python answers a second greeting with 503 (bpo-21783).
    if (this.seen_greeting) return this.push("503 Duplicate HELO/EHLO");
    this._set_rset_state();
    this.seen_greeting = arg;
    this.push(`250 ${this.fqdn}`);
  }

  /**
   * EHLO: starts an extended session and lists the extensions: SIZE (when
   * there is a limit), 8BITMIME (unless decode_data), SMTPUTF8 (when
   * enabled) and HELP.
   *
   * @param arg The client's name.
   */
  smtp_EHLO(arg: string | null): HookResult {
    if (!arg) return this.push("501 Syntax: EHLO hostname");
    if (this.seen_greeting) return this.push("503 Duplicate HELO/EHLO");
    this._set_rset_state();
    this.seen_greeting = arg;
    this.extended_smtp = true;
    this.push(`250-${this.fqdn}`);
    if (this.data_size_limit) {
      this.push(`250-SIZE ${this.data_size_limit}`);
      this.#raiseLimit("MAIL", 26);
    }
    if (!this.decode_data) this.push("250-8BITMIME");
    if (this.enable_SMTPUTF8) {
      this.push("250-SMTPUTF8");
      this.#raiseLimit("MAIL", 10);
    }
    if (this.tls !== null && !this.secure) this.push("250-STARTTLS");
    this.push("250 HELP");
  }

  /**
   * STARTTLS (RFC 3207), when the server has a certificate: answers `220
   * Ready to start TLS`, forgets the session (the client says EHLO again)
   * and upgrades the connection. Commands the client pipelined behind it
   * are dropped: they came in the clear.
   *
   * @param arg Must be empty.
   * @returns A promise that settles once the handshake is done.
   */
  smtp_STARTTLS(arg: string | null): HookResult {
    if (this.tls === null) {
      return this.push('500 Error: command "STARTTLS" not recognized');
    }
    if (arg) return this.push("501 Syntax: STARTTLS");
    if (this.secure) return this.push("503 Error: TLS already active");
    if (this.mailfrom !== null) {
      return this.push("503 Error: MAIL transaction in progress");
    }
    this.push("220 Ready to start TLS");
    this._set_rset_state();
    this.seen_greeting = "";
    this.extended_smtp = false;
    this.command_size_limits.clear();
    this.secure = true;
    return this.start_tls(this.tls);
  }

  #raiseLimit(command: string, extra: number): void {
    const limits = this.command_size_limits;
    limits.set(
      command,
      (limits.get(command) ?? this.command_size_limit) + extra,
    );
  }

  /**
   * NOOP: does nothing.
   *
   * @param arg Must be absent.
   */
  smtp_NOOP(arg: string | null): HookResult {
    this.push(arg ? "501 Syntax: NOOP" : "250 OK");
  }

  /**
   * QUIT: says goodbye and closes once the reply is sent.
   *
   * @param _arg Ignored.
   */
  smtp_QUIT(_arg: string | null): HookResult {
    this.push("221 Bye");
    this.close_when_done();
  }

  /**
   * HELP: lists the commands, or the syntax of one.
   *
   * @param arg A command name, or nothing.
   */
  smtp_HELP(arg: string | null): HookResult {
    const commands = "EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY";
    if (!arg) return this.push(`250 Supported commands: ${commands}`);
    const extended = this.extended_smtp ? " [SP <mail-parameters>]" : "";
    const syntax: Record<string, string> = {
      EHLO: "EHLO hostname",
      HELO: "HELO hostname",
      MAIL: `MAIL FROM: <address>${extended}`,
      RCPT: `RCPT TO: <address>${extended}`,
      DATA: "DATA",
      RSET: "RSET",
      NOOP: "NOOP",
      QUIT: "QUIT",
      VRFY: "VRFY <address>",
    };
    const help = Object.hasOwn(syntax, arg.toUpperCase())
      ? syntax[arg.toUpperCase()]
      : undefined;
    this.push(
      help === undefined
        ? `501 Supported commands: ${commands}`
        : `250 Syntax: ${help}`,
    );
  }

  /**
   * VRFY: never verifies, but says whether the address parses.
   *
   * @param arg An address.
   */
  smtp_VRFY(arg: string | null): HookResult {
    if (!arg) return this.push("501 Syntax: VRFY <address>");
    const [address] = parseAddress(arg);
    this.push(
      address
        ? "252 Cannot VRFY user, but will accept message and attempt delivery"
        : `502 Could not VRFY ${arg}`,
    );
  }

  /**
   * MAIL FROM: starts a transaction. With EHLO it takes `SIZE=`, `BODY=`
   * (`7BIT` or `8BITMIME`, unless decode_data) and `SMTPUTF8` (when
   * enabled).
   *
   * @param arg `FROM:<address> [parameters]`.
   */
  smtp_MAIL(arg: string | null): HookResult {
    if (!this.seen_greeting) return this.push("503 Error: send HELO first");
    let syntaxerr = "501 Syntax: MAIL FROM: <address>";
    if (this.extended_smtp) syntaxerr += " [SP <mail-parameters>]";
    if (arg === null) return this.push(syntaxerr);
    const [address, rest] = parseAddress(stripKeyword("FROM:", arg));
    if (!address) return this.push(syntaxerr);
    if (!this.extended_smtp && rest) return this.push(syntaxerr);
    if (this.mailfrom) return this.push("503 Error: nested MAIL command");
    this.mail_options = splitParams(rest);
    const params = parseParams(this.mail_options);
    if (params === null) return this.push(syntaxerr);
    if (!this.decode_data) {
      const body = take(params, "BODY") ?? "7BIT";
      if (body !== "7BIT" && body !== "8BITMIME") {
        return this.push("501 Error: BODY can only be one of 7BIT, 8BITMIME");
      }
    }
    if (this.enable_SMTPUTF8) {
      const smtputf8 = take(params, "SMTPUTF8");
      if (smtputf8 === true) this.require_SMTPUTF8 = true;
      else if (smtputf8 !== undefined) {
        return this.push("501 Error: SMTPUTF8 takes no arguments");
      }
    }
    const size = take(params, "SIZE");
    if (size !== undefined) {
      if (size === true || !/^[0-9]+$/.test(size)) return this.push(syntaxerr);
      if (this.data_size_limit && Number(size) > this.data_size_limit) {
        return this.push(
          "552 Error: message size exceeds fixed maximum message size",
        );
      }
    }
    if (params.size > 0) {
      return this.push(
        "555 MAIL FROM parameters not recognized or not implemented",
      );
    }
    this.mailfrom = address;
    this.push("250 OK");
  }

  /**
   * RCPT TO: adds a recipient; no parameters are recognized. Past
   * {@linkcode SMTPChannel.maxRecipients} it answers `452 Error: too many
   * recipients`.
   *
   * @param arg `TO:<address> [parameters]`.
   */
  smtp_RCPT(arg: string | null): HookResult {
    if (!this.seen_greeting) return this.push("503 Error: send HELO first");
    if (!this.mailfrom) return this.push("503 Error: need MAIL command");
    let syntaxerr = "501 Syntax: RCPT TO: <address>";
    if (this.extended_smtp) syntaxerr += " [SP <mail-parameters>]";
    if (arg === null) return this.push(syntaxerr);
    const [address, rest] = parseAddress(stripKeyword("TO:", arg));
    if (!address) return this.push(syntaxerr);
    if (!this.extended_smtp && rest) return this.push(syntaxerr);
    this.rcpt_options = splitParams(rest);
    const params = parseParams(this.rcpt_options);
    if (params === null) return this.push(syntaxerr);
    if (params.size > 0) {
      return this.push(
        "555 RCPT TO parameters not recognized or not implemented",
      );
    }
    if (this.rcpttos.length >= this.maxRecipients) {
      return this.push("452 Error: too many recipients");
    }
    this.rcpttos.push(address);
    this.push("250 OK");
  }

  /**
   * RSET: drops the transaction (the greeting stays).
   *
   * @param arg Must be absent.
   */
  smtp_RSET(arg: string | null): HookResult {
    if (arg) return this.push("501 Syntax: RSET");
    this._set_rset_state();
    this.push("250 OK");
  }

  /**
   * DATA: starts the message; it ends with a line holding only `.`.
   *
   * @param arg Must be absent.
   */
  smtp_DATA(arg: string | null): HookResult {
    if (!this.seen_greeting) return this.push("503 Error: send HELO first");
    if (this.rcpttos.length === 0) {
      return this.push("503 Error: need RCPT command");
    }
    if (arg) return this.push("501 Syntax: DATA");
    this.smtp_state = SMTPChannel.DATA;
    this.#message = new ByteBuffer();
    this.#dataLines = 0;
    this.#lineBytes = 0;
    this.#lineHead = -1;
    this.#startDeadline(this.dataTimeout);
    this.push("354 End data with <CR><LF>.<CR><LF>");
  }

  /**
   * EXPN: not implemented, as in Python.
   *
   * @param _arg Ignored.
   */
  smtp_EXPN(_arg: string | null): HookResult {
    this.push("502 EXPN not implemented");
  }
}

function splitParams(rest: string): string[] {
  return rest.toUpperCase().split(/\s+/u).filter((param) => param !== "");
}

function take(
  params: Map<string, string | true>,
  key: string,
): string | true | undefined {
  const value = params.get(key);
  params.delete(key);
  return value;
}
