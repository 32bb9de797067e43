// The seam between Dispatcher and UDP: dispatcher.ts knows only this
// interface; the implementation, which needs Deno's `--unstable-net`, lives
// in unstable_udp.ts and registers itself when imported.

import type { Channel } from "./_channel.ts";
import type { DatagramEndpoint, SocketOps } from "./_socket_object.ts";
import type { Family, InetAddress } from "./socket.ts";

/** A channel over a UDP endpoint: an inbox of datagrams, a send queue. */
export interface DatagramChannel extends Channel, SocketOps {
  /** Opens the endpoint on `address` (Python's `bind()`). */
  open(address: InetAddress): DatagramEndpoint;
  /**
   * Makes `address` the default peer: `send()` goes there and only its
   * datagrams are received. Opens the endpoint first if needed.
   */
  setPeer(address: InetAddress): DatagramEndpoint;
}

type Factory = (owner: unknown, family: Family) => DatagramChannel;

let factory: Factory | null = null;

/** Called by unstable_udp.ts when it is imported. */
export function registerDatagram(make: Factory): void {
  factory = make;
}

/** A new datagram channel for `owner`; throws when UDP is not enabled. */
export function datagramChannel(
  owner: unknown,
  family: Family,
): DatagramChannel {
  if (factory === null) {
    throw new Deno.errors.NotSupported(
      'Cannot create socket: SOCK_DGRAM needs `import "@asyncore/asyncore/unstable-udp"` and Deno\'s --unstable-net flag',
    );
  }
  return factory(owner, family);
}
