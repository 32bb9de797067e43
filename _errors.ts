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
 * A failed bind's error: Deno's class and `code`, with a message naming
 * `address` ("Cannot bind: address 127.0.0.1:8080 is in use").
 */
export function bindError(error: unknown, address: Address): unknown {
  const where = formatAddress(address);
  return withMessage(
    error,
    error instanceof Deno.errors.AddrInUse
      ? `Cannot bind: address ${where} is in use`
      : `Cannot bind: address ${where}: ${(error as Error).message}`,
  );
}
