/**
 * The small slice of Python's `socket` module that the asyncore API needs:
 * address families, socket types, the options `setsockopt()` can set, the
 * `shutdown()` modes, and the {@linkcode Address} type. The socket object
 * itself, `SocketObject`, is what a dispatcher's `socket` and `accept()`
 * give (exported with the dispatcher).
 *
 * Addresses are `[host, port]` tuples for IPv4 and IPv6, and a filesystem
 * path for Unix stream sockets, as in Python.
 *
 * @example Pick the family of an address
 * ```ts
 * import { AF_INET6, AF_UNIX, familyOf } from "@asyncore/asyncore/socket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(familyOf(["::1", 8080]), AF_INET6);
 * assert.equal(familyOf("/tmp/app.sock"), AF_UNIX);
 * ```
 *
 * @module
 */

/** IPv4 address family (Python's `socket.AF_INET`). */
export const AF_INET = 2;
/** IPv6 address family (Python's `socket.AF_INET6`). */
export const AF_INET6 = 10;
/** Unix domain socket family (Python's `socket.AF_UNIX`). */
export const AF_UNIX = 1;
/** Stream socket type: TCP or a Unix stream socket (`socket.SOCK_STREAM`). */
export const SOCK_STREAM = 1;
/**
 * Datagram socket type (`socket.SOCK_DGRAM`): UDP, once
 * `@asyncore/asyncore/unstable-udp` is imported and Deno runs with
 * `--unstable-net`.
 */
export const SOCK_DGRAM = 2;

/** Socket-level options (`socket.SOL_SOCKET`), for `setsockopt()`. */
export const SOL_SOCKET = 1;
/** Reuse a listening address at once (`socket.SO_REUSEADDR`); Deno always does. */
export const SO_REUSEADDR = 2;
/** TCP keep-alive probes (`socket.SO_KEEPALIVE`). */
export const SO_KEEPALIVE = 9;
/** TCP-level options (`socket.IPPROTO_TCP`), for `setsockopt()`. */
export const IPPROTO_TCP = 6;
/** Disable Nagle's algorithm (`socket.TCP_NODELAY`); on by default here. */
export const TCP_NODELAY = 1;
/** `shutdown()`: no more receiving (`socket.SHUT_RD`). */
export const SHUT_RD = 0;
/** `shutdown()`: no more sending; the peer reads EOF (`socket.SHUT_WR`). */
export const SHUT_WR = 1;
/** `shutdown()`: both directions (`socket.SHUT_RDWR`). */
export const SHUT_RDWR = 2;

/** One of {@linkcode AF_INET}, {@linkcode AF_INET6}, {@linkcode AF_UNIX}. */
export type Family = typeof AF_INET | typeof AF_INET6 | typeof AF_UNIX;

/** An IPv4 or IPv6 address: `[host, port]`. */
export type InetAddress = [host: string, port: number];

/**
 * A socket address as Python writes it: `[host, port]` for IPv4 and IPv6, or
 * a filesystem path for a Unix socket.
 */
export type Address = InetAddress | string;

/**
 * The address family an address belongs to: a path is {@linkcode AF_UNIX}, a
 * host containing `:` is {@linkcode AF_INET6}, anything else
 * {@linkcode AF_INET}.
 *
 * @example Classify addresses
 * ```ts
 * import { AF_INET, familyOf } from "@asyncore/asyncore/socket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(familyOf(["127.0.0.1", 80]), AF_INET);
 * ```
 *
 * @param address The address to classify.
 * @returns The address family.
 * @throws {TypeError} If `address` is neither a path nor a `[host, port]` pair.
 */
export function familyOf(address: Address): Family {
  checkAddress(address, "address");
  if (typeof address === "string") return AF_UNIX;
  return address[0].includes(":") ? AF_INET6 : AF_INET;
}

/**
 * Validates an address and throws a `TypeError` or `RangeError` naming the
 * argument when it is malformed.
 *
 * @example Reject a bad port
 * ```ts
 * import { checkAddress } from "@asyncore/asyncore/socket";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => checkAddress(["127.0.0.1", 70000], "address"), RangeError);
 * ```
 *
 * @param address The value to check.
 * @param name The argument name to use in error messages.
 * @throws {TypeError} If `address` is not a path or a `[host, port]` pair.
 * @throws {RangeError} If the port is not an integer in 0..65535 or the path
 * is empty.
 */
export function checkAddress(
  address: unknown,
  name: string,
): asserts address is Address {
  if (typeof address === "string") {
    if (address.length === 0) {
      throw new RangeError(`Cannot use ${name}: the Unix socket path is empty`);
    }
    return;
  }
  if (
    !Array.isArray(address) || address.length !== 2 ||
    typeof address[0] !== "string" || typeof address[1] !== "number"
  ) {
    throw new TypeError(
      `Cannot use ${name}: expected a [host, port] pair or a Unix socket path, got ${
        showValue(address)
      }`,
    );
  }
  const port = address[1];
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot use ${name}: port "${port}" is not an integer in 0..65535`,
    );
  }
}

/**
 * Converts a Deno address to Python's form: `[host, port]` for TCP, the path
 * for a Unix socket (`""` for an unnamed one).
 *
 * @example Convert a listener's address
 * ```ts
 * import { fromDenoAddr } from "@asyncore/asyncore/socket";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const [host, port] = fromDenoAddr(listener.addr) as [string, number];
 * assert.equal(host, "127.0.0.1");
 * assert.ok(port > 0);
 * ```
 *
 * @param addr The address Deno reported.
 * @returns The address in Python's form.
 */
export function fromDenoAddr(addr: Deno.Addr): Address {
  if ("hostname" in addr) return [addr.hostname, addr.port];
  if ("path" in addr) return addr.path ?? "";
  return [String(addr.cid), addr.port];
}

function showValue(value: unknown): string {
  try {
    return typeof value === "string" ? `"${value}"` : String(
      Array.isArray(value) ? `[${value.map(String).join(", ")}]` : value,
    );
  } catch {
    return typeof value;
  }
}
