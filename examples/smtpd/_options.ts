// The options SMTPServer and SMTPChannel share: checked, with defaults.

import type { TlsServerOptions } from "@asyncore/asyncore";
import type { SMTPChannelOptions } from "./channel.ts";

/** The default limit on a message's size in bytes, as in Python's smtpd. */
export const DATA_SIZE_DEFAULT = 33554432;

/** What SMTPServer and SMTPChannel keep of their options. */
export interface SMTPSettings {
  data_size_limit: number | null;
  enable_SMTPUTF8: boolean;
  decode_data: boolean;
  tls: TlsServerOptions | null;
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
  };
}

/**
 * Throws if `options` cannot work: a TypeError for a wrong type or for both
 * `decode_data` and `enable_SMTPUTF8`, a RangeError for a negative or
 * fractional `data_size_limit` or a `timeout` that is not positive.
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
  const timeout = options.timeout;
  if (timeout !== undefined && timeout !== null) {
    if (typeof timeout !== "number") {
      throw new TypeError(
        `Cannot ${action}: timeout must be a number, got ${typeof timeout}`,
      );
    }
    if (!(timeout > 0 && Number.isFinite(timeout))) {
      throw new RangeError(
        `Cannot ${action}: timeout "${timeout}" is not a positive number`,
      );
    }
  }
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
