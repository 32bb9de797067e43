// Error helpers shared by dispatcher.ts and _channel.ts.

import type { Address } from "./socket.ts";

/** `host:port` (`[host]:port` for IPv6) or the Unix socket path. */
export function formatAddress(address: Address): string {
  if (typeof address === "string") return address;
  const [host, port] = address;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * `error` re-made with `message`: the same class (so `instanceof
 * Deno.errors.AddrInUse` still holds) and `code`, the original as `cause`.
 * Anything that is not an `Error` is returned as it is.
 */
export function withMessage(error: unknown, message: string): unknown {
  if (!(error instanceof Error)) return error;
  const Class = error.constructor as new (
    message: string,
    options: ErrorOptions,
  ) => Error;
  let remade: Error;
  try {
    remade = new Class(message, { cause: error });
  } catch {
    return error;
  }
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) Object.assign(remade, { code });
  return remade;
}

/**
 * `value instanceof Class`, safe for any thrown value: false where the
 * check itself throws (a revoked Proxy), so a check on an error never
 * replaces it.
 */
export function isInstance(
  value: unknown,
  Class: abstract new (...args: never[]) => unknown,
): boolean {
  try {
    return value instanceof Class;
  } catch {
    return false;
  }
}

/** What stands for an error that cannot become a string (Python's words). */
export const STR_FAILED = "<exception str() failed>";

/**
 * `String(value)`, or Python's `<exception str() failed>` where that throws
 * (no `toString`, one that throws, a revoked Proxy): a log line about an
 * error never fails in its turn.
 */
export function describeError(value: unknown): string {
  try {
    return String(value);
  } catch {
    return STR_FAILED;
  }
}
