// Checks of the options SMTPServer and SMTPChannel share.

import type { SMTPChannelOptions } from "./channel.ts";

/**
 * Throws if `options` cannot work: a TypeError for a wrong type or for both
 * `decode_data` and `enable_SMTPUTF8`, a RangeError for a negative or
 * fractional `data_size_limit` or a `timeout` that is not positive.
 */
export function checkSMTPOptions(
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
