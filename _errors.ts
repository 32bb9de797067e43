// Error helpers: messages that name an address, checks that are safe for any
// thrown value, and which errors mean the peer is gone.

import type { Address } from "./socket.ts";

/** Characters of a host (or path) that an error message shows. */
const SHOWN = 64;

/**
 * `text` cut to its first 64 characters and "…": a message never carries a
 * whole 70 kB host name.
 */
export function cut(text: string): string {
  return text.length > SHOWN ? `${text.slice(0, SHOWN)}…` : text;
}

/**
 * `host:port` (`[host]:port` for IPv6, without doubling the brackets of a
 * host given as `[::1]`) or the Unix socket path, a long host or path cut.
 */
export function formatAddress(address: Address): string {
  if (typeof address === "string") return cut(address);
  const [host, port] = address;
  const shown = cut(host);
  return host.includes(":") && !host.startsWith("[")
    ? `[${shown}]:${port}`
    : `${shown}:${port}`;
}

/**
 * `error`'s message (Deno's), with `host` cut where it quotes it ("invalid
 * host 'xxx…'").
 */
export function messageAbout(error: unknown, host: string): string {
  let message: string;
  try {
    message = String((error as Error)?.message);
  } catch {
    message = STR_FAILED;
  }
  return host.length > SHOWN ? message.replaceAll(host, cut(host)) : message;
}

/**
 * What a value is, for a "got …" in a message: its `typeof`, `null` and
 * `NaN` by name, and an object by its class ("Array", "ArrayBuffer").
 */
export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "number" && Number.isNaN(value)) return "NaN";
  if (typeof value !== "object") return typeof value;
  try {
    return value.constructor?.name || "object";
  } catch {
    return "object";
  }
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

/**
 * A TLS handshake's failure, naming the peer ("Cannot complete TLS handshake
 * with 127.0.0.1:8443: …"); the class stays, so a peer that left mid-way
 * still counts as a disconnect.
 */
export function handshakeError(error: unknown, peer: string): unknown {
  const reason = isInstance(error, Error)
    ? messageAbout(error, "")
    : describeError(error);
  return withMessage(
    error,
    `Cannot complete TLS handshake with ${peer}: ${reason}`,
  );
}

/**
 * A failed bind's error: Deno's class and `code`, with a message naming
 * `address` ("Cannot bind: address 127.0.0.1:8080 is in use").
 */
export function bindError(error: unknown, address: Address): unknown {
  const where = formatAddress(address);
  return withMessage(
    error,
    isInstance(error, Deno.errors.AddrInUse)
      ? `Cannot bind: address ${where} is in use`
      : `Cannot bind: address ${where}: ${
        messageAbout(error, typeof address === "string" ? address : address[0])
      }`,
  );
}

/**
 * Python's `_DISCONNECTED` set: errors that mean "the peer is gone", plus a
 * TLS peer that left without `close_notify` (most clients do). Safe for any
 * thrown value (a revoked Proxy is no disconnect).
 */
export function isDisconnect(error: unknown): boolean {
  return DISCONNECTED.some((Class) => isInstance(error, Class));
}

const DISCONNECTED = [
  Deno.errors.ConnectionReset,
  Deno.errors.UnexpectedEof,
  Deno.errors.BrokenPipe,
  Deno.errors.NotConnected,
  Deno.errors.ConnectionAborted,
  Deno.errors.BadResource,
];
