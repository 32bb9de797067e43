// The options SMTPServer and SMTPChannel share: checked, with defaults.

import type { TlsServerOptions } from "@asyncore/asyncore";
import type { SMTPChannelOptions } from "./channel.ts";

/** The default limit on a message's size in bytes, as in Python's smtpd. */
export const DATA_SIZE_DEFAULT = 33554432;

/**
 * Seconds a command line may take from its first byte to its CRLF by
 * default: the 5 minutes RFC 5321 §4.5.3.2.7 has a server wait for a
 * command.
 */
export const COMMAND_TIMEOUT_DEFAULT = 300;

/**
 * Seconds a message may take from the `354` to its final dot by default:
 * 10 minutes, the longest of RFC 5321's timeouts (§4.5.3.2).
 */
export const DATA_TIMEOUT_DEFAULT = 600;

/**
 * Recipients a transaction may name by default; RFC 5321 §4.5.3.1.8 asks
 * for at least 100.
 */
export const MAX_RECIPIENTS_DEFAULT = 1000;

/**
 * Bytes of replies a client may leave unread by default before the channel
 * stops reading its commands.
 */
export const MAX_REPLY_BUFFER_DEFAULT = 65536;

/** What SMTPServer and SMTPChannel keep of their options. */
export interface SMTPSettings {
  data_size_limit: number | null;
  enable_SMTPUTF8: boolean;
  decode_data: boolean;
  tls: TlsServerOptions | null;
  commandTimeout: number | null;
  dataTimeout: number | null;
  maxRecipients: number;
  maxReplyBuffer: number;
}

/**
 * The settings `options` ask for, defaults filled in; see
 * {@linkcode checkSMTPOptions} for what it throws.
 */
export function smtpSettings(
  options: SMTPChannelOptions,
  action: string,
): SMTPSettings {
  checkSMTPOptions(options, action);
  return {
    data_size_limit: options.data_size_limit === undefined
      ? DATA_SIZE_DEFAULT
      : options.data_size_limit,
    enable_SMTPUTF8: options.enable_SMTPUTF8 ?? false,
    decode_data: options.decode_data ?? false,
    tls: options.tls ?? null,
    commandTimeout: options.commandTimeout === undefined
      ? COMMAND_TIMEOUT_DEFAULT
      : options.commandTimeout,
    dataTimeout: options.dataTimeout === undefined
      ? DATA_TIMEOUT_DEFAULT
      : options.dataTimeout,
    maxRecipients: options.maxRecipients ?? MAX_RECIPIENTS_DEFAULT,
    maxReplyBuffer: options.maxReplyBuffer ?? MAX_REPLY_BUFFER_DEFAULT,
  };
}

// A number of seconds: positive and finite, or null (or absent) for none.
function checkSeconds(value: unknown, name: string, action: string): void {
  if (value === undefined || value === null) return;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${action}: ${name} must be a number, got ${typeof value}`,
    );
  }
  if (!(value > 0 && Number.isFinite(value))) {
    throw new RangeError(
      `Cannot ${action}: ${name} "${value}" is not a positive number`,
    );
  }
}

// A count: a safe integer of at least `min`, or absent for the default.
function checkCount(
  value: unknown,
  name: string,
  min: number,
  action: string,
): void {
  if (value === undefined) return;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${action}: ${name} must be a number, got ${typeof value}`,
    );
  }
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Cannot ${action}: ${name} "${value}" is not an integer from ${min}`,
    );
  }
}

/**
 * Throws if `options` cannot work: a TypeError for a wrong type or for both
 * `decode_data` and `enable_SMTPUTF8`, a RangeError for a negative or
 * fractional `data_size_limit` or `maxReplyBuffer`, a `maxRecipients` under
 * 1, or a `timeout`, `commandTimeout` or `dataTimeout` that is not
 * positive.
 */
function checkSMTPOptions(
  options: SMTPChannelOptions,
  action: string,
): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot ${action}: options must be an object`);
  }
  if (options.enable_SMTPUTF8 && options.decode_data) {
    throw new TypeError(
      `Cannot ${action}: decode_data and enable_SMTPUTF8 cannot both be true`,
    );
  }
  const tls = options.tls;
  if (
    tls !== undefined && tls !== null &&
    (typeof tls.cert !== "string" || typeof tls.key !== "string")
  ) {
    throw new TypeError(
      `Cannot ${action}: tls needs a PEM "cert" and "key" as strings`,
    );
  }
  checkSeconds(options.timeout, "timeout", action);
  checkSeconds(options.commandTimeout, "commandTimeout", action);
  checkSeconds(options.dataTimeout, "dataTimeout", action);
  checkCount(options.maxRecipients, "maxRecipients", 1, action);
  checkCount(options.maxReplyBuffer, "maxReplyBuffer", 0, action);
  const limit = options.data_size_limit;
  if (limit === undefined || limit === null) return;
  if (typeof limit !== "number") {
    throw new TypeError(
      `Cannot ${action}: data_size_limit must be a number, got ${typeof limit}`,
    );
  }
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new RangeError(
      `Cannot ${action}: data_size_limit "${limit}" is not a non-negative integer`,
    );
  }
}
