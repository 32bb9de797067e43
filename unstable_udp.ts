/**
 * UDP for {@linkcode Dispatcher}: importing this module lets
 * `create_socket(AF_INET, SOCK_DGRAM)` (or `AF_INET6`) make a datagram
 * socket, served by the same loop as TCP. It stands on
 * `Deno.listenDatagram`, which needs Deno's `--unstable-net` flag; without
 * it `create_socket()` throws `Deno.errors.NotSupported` naming the flag.
 *
 * As in Python: `bind(address)`, then `this.socket.recvfrom(size)` →
 * `[data, address]` and `this.socket.sendto(data, address)`; or
 * `connect(address)`, then `send(data)` and `recv(size)` talk to that peer
 * only (datagrams from anyone else are dropped, as the kernel does for a
 * connected UDP socket). An unbound socket is bound to an ephemeral port by
 * its first `sendto()` or `connect()`.
 *
 * One difference: the connection is ours, not the kernel's, since Deno has
 * no connected UDP socket. The kernel reports an ICMP "port unreachable"
 * only on a connected socket, so where Python's connected socket raises
 * `ConnectionRefusedError` (through `handle_error()`) on the `send()` or
 * `recv()` after a datagram reached a closed port, here nothing is reported
 * and the datagram is lost, as for an unconnected socket. Notice a silent
 * peer with {@linkcode Dispatcher.timeout} (`handle_timeout()`) or a timer.
 *
 * The channel is read-ready while its inbox holds a datagram. The inbox
 * holds at most {@linkcode MAX_INBOX_DATAGRAMS}; while it is full (or
 * `readable()` is false) nothing more is received and datagrams wait in the
 * kernel's receive buffer, which drops new ones when it fills, exactly as
 * it does for a Python program that reads too slowly. `recv(size)` and
 * `recvfrom(size)` return one datagram, cut to `size` bytes (the rest of it
 * is dropped, as UDP does).
 *
 * @example A UDP echo server and client on one loop
 * ```ts
 * import "@asyncore/asyncore/unstable-udp";
 * import {
 *   AF_INET,
 *   close_all,
 *   Dispatcher,
 *   loop,
 *   SOCK_DGRAM,
 * } from "@asyncore/asyncore";
 * import assert from "node:assert/strict";
 *
 * class EchoServer extends Dispatcher {
 *   override writable(): boolean {
 *     return false;
 *   }
 *   override handle_read(): void {
 *     const [data, address] = this.socket!.recvfrom(2048);
 *     this.socket!.sendto(data, address);
 *   }
 * }
 * class Client extends Dispatcher {
 *   reply = "";
 *   override handle_connect(): void {
 *     this.send(new TextEncoder().encode("ping"));
 *   }
 *   override writable(): boolean {
 *     return !this.connected;
 *   }
 *   override handle_read(): void {
 *     this.reply = new TextDecoder().decode(this.recv(2048));
 *     close_all();
 *   }
 * }
 *
 * const server = new EchoServer();
 * server.create_socket(AF_INET, SOCK_DGRAM);
 * server.bind(["127.0.0.1", 0]);
 * const client = new Client();
 * client.create_socket(AF_INET, SOCK_DGRAM);
 * client.connect(server.getsockname(AF_INET));
 * await loop({ timeout: 5 });
 * assert.equal(client.reply, "ping");
 * ```
 *
 * @module
 */

import { EMPTY } from "./_bytes.ts";
import { Channel } from "./_channel.ts";
import { type DatagramChannel, registerDatagram } from "./_datagram.ts";
import { formatAddress } from "./_errors.ts";
import { OUTBOX_MARK } from "./_outbox.ts";
import { closeQuietly } from "./_quiet.ts";
import type { DatagramEndpoint } from "./_socket_object.ts";
import { bindError } from "./_errors.ts";
import {
  type Address,
  AF_INET6,
  checkAddress,
  type Family,
  familyOf,
  fromDenoAddr,
  type InetAddress,
} from "./socket.ts";

/**
 * The most datagrams a UDP channel holds unread; past it the kernel's
 * receive buffer holds (and, when full, drops) what arrives.
 */
export const MAX_INBOX_DATAGRAMS = 64;

/** The largest UDP payload over IPv4 (65,535 minus IP and UDP headers). */
const MAX_DATAGRAM_V4 = 65507;
/** The largest UDP payload over IPv6 (no IP header in the length). */
const MAX_DATAGRAM_V6 = 65527;

/**
 * Whether this Deno can make UDP sockets: true when it runs with
 * `--unstable-net` (`Deno.listenDatagram` exists).
 *
 * @example Check before creating a UDP socket
 * ```ts
 * import { udpAvailable } from "@asyncore/asyncore/unstable-udp";
 *
 * if (!udpAvailable()) console.error("run with --unstable-net");
 * ```
 *
 * @returns Whether `create_socket(…, SOCK_DGRAM)` can work.
 */
export function udpAvailable(): boolean {
  return typeof (Deno as { listenDatagram?: unknown }).listenDatagram ===
    "function";
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

// Where an unbound socket binds for its first peer: loopback for a loopback
// peer (so a test opens nothing on the network), else every interface.
function localFor(peer: InetAddress, family: Family): InetAddress {
  const v6 = family === AF_INET6;
  if (isLoopback(peer[0])) return [v6 ? "::1" : "127.0.0.1", 0];
  return [v6 ? "::" : "0.0.0.0", 0];
}

function samePeer(from: InetAddress, peer: InetAddress): boolean {
  if (from[1] !== peer[1]) return false;
  if (from[0] === peer[0]) return true;
  return peer[0] === "localhost" && isLoopback(from[0]);
}

class UdpChannel extends Channel implements DatagramChannel {
  readonly #family: Family;
  #endpoint: DatagramEndpoint | null = null;
  #buf: Uint8Array = EMPTY;
  #inbox: [data: Uint8Array, address: InetAddress][] = [];
  #receiving = false;
  /** A receive or send error, reported once by the next recv()/recvfrom(). */
  #error: unknown = null;
  #peer: InetAddress | null = null;
  #out: [data: Uint8Array, to: Deno.NetAddr][] = [];
  #outBytes = 0;
  #sending = false;

  constructor(owner: unknown, family: Family) {
    super(owner);
    this.#family = family;
  }

  open(address: InetAddress): DatagramEndpoint {
    if (this.#endpoint !== null) {
      throw new Error("Cannot bind: the socket is already bound");
    }
    const listenDatagram = (Deno as {
      listenDatagram?: (
        options: { transport: "udp"; hostname: string; port: number },
      ) => DatagramEndpoint;
    }).listenDatagram;
    if (listenDatagram === undefined) throw notAvailable();
    let endpoint: DatagramEndpoint;
    try {
      endpoint = listenDatagram({
        transport: "udp",
        hostname: address[0],
        port: address[1],
      });
    } catch (error) {
      throw bindError(error, address);
    }
    this.#endpoint = endpoint;
    this.#buf = new Uint8Array(MAX_DATAGRAM_V6);
    return endpoint;
  }

  setPeer(address: InetAddress): DatagramEndpoint {
    const endpoint = this.#endpoint ??
      this.open(localFor(address, this.#family));
    this.#peer = address;
    // Datagrams from others already waiting are not for a connected socket.
    this.#inbox = this.#inbox.filter(([, from]) => samePeer(from, address));
    return endpoint;
  }

  peer(): Address | null {
    return this.#peer;
  }

  endpoint(): DatagramEndpoint | null {
    return this.#endpoint;
  }

  override armRead(): void {
    const endpoint = this.#endpoint;
    if (
      this.#receiving || this.closed || endpoint === null ||
      this.#inbox.length >= MAX_INBOX_DATAGRAMS
    ) return;
    this.#receiving = true;
    endpoint.receive(this.#buf).then(this.#onReceive, this.#onReceiveError);
  }

  override readReady(): boolean {
    return this.#inbox.length > 0 || this.#error !== null;
  }

  override writeReady(): boolean {
    return !this.closed && this.#outBytes < OUTBOX_MARK;
  }

  override recv(size: number): Uint8Array | null {
    if (this.closed) return null;
    return this.recvfrom(size)[0];
  }

  recvfrom(size: number): [data: Uint8Array, address: Address] {
    if (!Number.isInteger(size) || size <= 0) {
      throw new RangeError(
        `Cannot receive: size "${size}" is not a positive integer`,
      );
    }
    if (this.closed) {
      throw new Deno.errors.BadResource("Cannot receive: the socket is closed");
    }
    const next = this.#inbox.shift();
    if (next === undefined) {
      const error = this.#error;
      if (error !== null) {
        this.#error = null;
        throw error;
      }
      throw new Deno.errors.WouldBlock(
        "Cannot receive: no datagram has arrived yet (call it from handle_read())",
      );
    }
    if (this.wantRead) this.armRead();
    const [data, from] = next;
    return [data.length > size ? data.subarray(0, size) : data, from];
  }

  override send(data: Uint8Array): number {
    const peer = this.#peer;
    if (peer === null) {
      throw new Deno.errors.NotConnected(
        "Cannot send: the datagram socket is not connected (use sendto())",
      );
    }
    return this.sendto(data, peer);
  }

  sendto(data: Uint8Array, address: Address): number {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot send: data must be a Uint8Array, got ${typeof data}`,
      );
    }
    checkAddress(address, "address");
    if (typeof address === "string") {
      throw new TypeError("Cannot send: a UDP address is a [host, port] pair");
    }
    if (this.closed) {
      throw new Deno.errors.BadResource("Cannot send: the socket is closed");
    }
    const given = familyOf(address);
    if (given !== this.#family && address[0] !== "localhost") {
      throw new TypeError(
        `Cannot send: address ${
          formatAddress(address)
        } does not belong to the socket's family ${this.#family}`,
      );
    }
    const limit = this.#family === AF_INET6 ? MAX_DATAGRAM_V6 : MAX_DATAGRAM_V4;
    if (data.length > limit) {
      throw new RangeError(
        `Cannot send: a datagram of ${data.length} bytes is over the ${limit}-byte limit`,
      );
    }
    // The send buffer is full: Python's sendto() would block.
    if (this.#outBytes >= OUTBOX_MARK) return 0;
    if (this.#endpoint === null) this.open(localFor(address, this.#family));
    this.#out.push([data.slice(), {
      transport: "udp",
      hostname: address[0],
      port: address[1],
    }]);
    this.#outBytes += data.length;
    this.#pump();
    return data.length;
  }

  override close(): void {
    if (this.closed) return;
    super.close();
    this.#inbox = [];
    this.#error = null;
    // Datagrams already queued are still sent, as closing a socket does.
    if (!this.#sending) this.#release();
  }

  #release(): void {
    this.#out = [];
    this.#outBytes = 0;
    const endpoint = this.#endpoint;
    this.#endpoint = null;
    // It may be closed already, through the socket object.
    if (endpoint !== null) closeQuietly(endpoint);
  }

  #pump(): void {
    const next = this.#out[0];
    const endpoint = this.#endpoint;
    if (this.#sending || next === undefined || endpoint === null) return;
    this.#sending = true;
    endpoint.send(next[0], next[1]).then(this.#onSent, this.#onSendError);
  }

  #onSent = (): void => {
    this.#sending = false;
    const wasFull = this.#outBytes >= OUTBOX_MARK;
    this.#outBytes -= this.#out.shift()?.[0].length ?? 0;
    if (this.closed) {
      if (this.#out.length === 0) this.#release();
      else this.#pump();
      return;
    }
    if (wasFull && this.#outBytes < OUTBOX_MARK) this.waker?.push(this);
    this.#pump();
  };

  #onSendError = (error: unknown): void => {
    // The datagram is lost, as UDP allows; the error is reported once.
    if (!this.closed) this.#error = error;
    this.#onSent();
    if (!this.closed) this.waker?.push(this);
  };

  #onReceive = ([data, addr]: [Uint8Array, Deno.Addr]): void => {
    this.#receiving = false;
    if (this.closed) return;
    const from = fromDenoAddr(addr) as InetAddress;
    const peer = this.#peer;
    if (peer === null || samePeer(from, peer)) {
      this.#inbox.push([data.slice(), from]);
      this.waker?.push(this);
    }
    if (this.wantRead) this.armRead();
  };

  #onReceiveError = (error: unknown): void => {
    this.#receiving = false;
    if (this.closed) return;
    this.#error = error;
    this.waker?.push(this);
  };
}

function notAvailable(): Error {
  return new Deno.errors.NotSupported(
    "Cannot create socket: UDP needs Deno's --unstable-net flag (Deno.listenDatagram is missing)",
  );
}

registerDatagram((owner, family) => {
  if (!udpAvailable()) throw notAvailable();
  return new UdpChannel(owner, family);
});
