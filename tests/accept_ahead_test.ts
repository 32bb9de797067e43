// A listener accepts ahead, as the kernel's backlog does, and one pass calls
// handle_accept() for each connection already accepted (up to ACCEPT_AHEAD),
// asking readable() before each: accepting N clients costs far fewer than N
// scans of the map, and a listener that limits its clients still holds them
// to the limit.

import assert from "node:assert/strict";
import { ACCEPT_AHEAD } from "../_accept.ts";
import { kChannel } from "../_channel.ts";
import { type Address, Dispatcher, loop, socket_map } from "../mod.ts";
import { closing, connectTo, loopUntil } from "./_helpers.ts";

class Server extends Dispatcher {
  accepted: Deno.Conn[] = [];
  limit = Infinity;
  /** While false, handle_accept() leaves connections waiting. */
  taking = true;
  constructor() {
    super();
    this.create_socket();
    this.bind(["127.0.0.1", 0]);
    this.listen(64);
  }
  override readable(): boolean {
    return this.accepted.length < this.limit;
  }
  override handle_accept(): void {
    if (this.taking) super.handle_accept();
  }
  override handle_accepted(sock: Deno.Conn): void {
    this.accepted.push(sock);
  }
}

async function connectAll(
  address: Address,
  count: number,
): Promise<Deno.Conn[]> {
  const clients: Deno.Conn[] = [];
  for (let i = 0; i < count; i++) clients.push(await connectTo(address));
  return clients;
}

for (const use_poll of [false, true]) {
  Deno.test(`one pass accepts every connection already waiting (use_poll: ${use_poll})`, async () => {
    using _cleanup = closing();
    const server = new Server();
    const count = ACCEPT_AHEAD;
    const clients = await connectAll(server.getsockname(), count);
    try {
      // The first accept lands; the rest follow it ahead of handle_accept().
      await loopUntil(() => server.accepted.length > 0, { use_poll });
      let passes = 1;
      while (server.accepted.length < count && passes < 100) {
        await loop({ timeout: 0.05, count: 1, use_poll });
        passes++;
      }
      assert.equal(server.accepted.length, count);
      // One pass per connection is what a pass-per-accept loop would take.
      assert.ok(passes < count / 2, `${count} accepts took ${passes} passes`);
    } finally {
      for (const conn of [...clients, ...server.accepted]) conn.close();
    }
  });
}

Deno.test("a listener whose readable() limits its clients accepts no more in a pass, and close_all() closes those accepted ahead", async () => {
  using _cleanup = closing();
  const server = new Server();
  server.taking = false;
  const clients = await connectAll(server.getsockname(), 8);
  try {
    // Accepted ahead, waiting for a handle_accept() that takes them.
    await loopUntil(() => server[kChannel]!.acceptQueued >= 5);
    server.taking = true;
    server.limit = 3;
    await loop({ timeout: 0.05, count: 1 });
    assert.equal(server.accepted.length, 3);
    for (let i = 0; i < 5; i++) await loop({ timeout: 0.01, count: 1 });
    assert.equal(server.accepted.length, 3);
    assert.equal(socket_map.size, 1);
  } finally {
    for (const conn of [...clients, ...server.accepted]) conn.close();
  }
});
