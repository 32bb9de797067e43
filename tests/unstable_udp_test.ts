// Tests of unstable_udp.ts: UDP dispatchers on the loop, with raw Deno
// datagram endpoints and a python3 socket as peers. Needs --unstable-net
// (deno.json's test task passes it).

import "../unstable_udp.ts";
import assert from "node:assert/strict";
import {
  type Address,
  AF_INET,
  AF_INET6,
  Dispatcher,
  SOCK_DGRAM,
} from "../mod.ts";
import { MAX_INBOX_DATAGRAMS, udpAvailable } from "../unstable_udp.ts";
import {
  bytes,
  closing,
  HAS_IPV6,
  HAS_PYTHON,
  loopUntil,
  text,
} from "./_helpers.ts";

/** Records every datagram with its sender. */
class Collector extends Dispatcher {
  got: [data: string, from: Address][] = [];
  open = true;
  override writable(): boolean {
    return false;
  }
  override handle_read(): void {
    const [data, from] = this.socket!.recvfrom(65536);
    this.got.push([text(data), from]);
  }
  override handle_close(): void {
    this.open = false;
    this.close();
  }
}

/** A raw Deno UDP endpoint on a free port, closed by `using`. */
function peer(hostname = "127.0.0.1"): Deno.DatagramConn & Disposable {
  const conn = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
  return Object.assign(conn, { [Symbol.dispose]: () => conn.close() });
}

function portOfAddr(addr: Deno.Addr): number {
  return (addr as Deno.NetAddr).port;
}

Deno.test("UDP is available under the test task's --unstable-net", () => {
  assert.ok(udpAvailable());
  assert.ok(MAX_INBOX_DATAGRAMS > 0);
});

for (
  const [name, family, host] of [
    ["IPv4", AF_INET, "127.0.0.1"],
    ["IPv6", AF_INET6, "::1"],
  ] as const
) {
  Deno.test({
    name: `${name}: bind() then recvfrom()/sendto() answer a raw Deno peer`,
    ignore: family === AF_INET6 && !HAS_IPV6,
    async fn() {
      using _cleanup = closing();
      class Echo extends Collector {
        override handle_read(): void {
          super.handle_read();
          const [data, from] = this.got.at(-1)!;
          this.socket!.sendto(bytes(data.toUpperCase()), from);
        }
      }
      const server = new Echo();
      server.create_socket(family, SOCK_DGRAM);
      server.bind([host, 0]);
      const [boundHost, port] = server.getsockname(family);
      assert.equal(boundHost, host);
      assert.ok(port > 0);
      using client = peer(host);
      const reply = client.receive();
      await client.send(bytes("ping"), {
        transport: "udp",
        hostname: host,
        port,
      });
      await loopUntil(() => server.got.length === 1);
      const [data, from] = await reply;
      assert.equal(text(data), "PING");
      assert.equal(portOfAddr(from), port);
      assert.deepEqual(server.got, [["ping", [host, portOfAddr(client.addr)]]]);
    },
  });
}

Deno.test('bind(["", port]) receives on every interface, as in Python; bind errors say "Cannot bind"', async () => {
  using _cleanup = closing();
  const server = new Collector();
  server.create_socket(AF_INET, SOCK_DGRAM);
  server.bind(["", 0]);
  const [host, port] = server.getsockname(AF_INET);
  assert.equal(host, "0.0.0.0");
  using client = peer();
  await client.send(bytes("any"), {
    transport: "udp",
    hostname: "127.0.0.1",
    port,
  });
  await loopUntil(() => server.got.length === 1);
  assert.deepEqual(server.got, [["any", [
    "127.0.0.1",
    portOfAddr(client.addr),
  ]]]);

  const second = new Collector();
  second.create_socket(AF_INET, SOCK_DGRAM);
  const taken = portOfAddr(client.addr);
  assert.throws(() => second.bind(["127.0.0.1", taken]), (error: unknown) => {
    assert.ok(error instanceof Deno.errors.AddrInUse);
    assert.equal(
      error.message,
      `Cannot bind: address 127.0.0.1:${taken} is in use`,
    );
    return true;
  });
});

Deno.test("connect() makes send()/recv() talk to one peer; others' datagrams are dropped", async () => {
  using _cleanup = closing();
  using a = peer();
  using b = peer();
  class Client extends Collector {
    connects = 0;
    override writable(): boolean {
      return !this.connected;
    }
    override handle_connect(): void {
      this.connects++;
      this.send(bytes("hello"));
    }
    override handle_read(): void {
      this.got.push([text(this.recv(65536)), this.getpeername()]);
    }
  }
  const client = new Client();
  client.create_socket(AF_INET, SOCK_DGRAM);
  client.connect(["127.0.0.1", portOfAddr(a.addr)]);
  const [, myPort] = client.getsockname(AF_INET);
  assert.ok(myPort > 0, "connect() binds an unbound socket");
  const hello = a.receive();
  await loopUntil(() => client.connected);
  const [data, from] = await hello;
  assert.equal(text(data), "hello");
  assert.equal(portOfAddr(from), myPort);
  const to = { transport: "udp", hostname: "127.0.0.1", port: myPort } as const;
  await b.send(bytes("from a stranger"), to);
  await a.send(bytes("from the peer"), to);
  await loopUntil(() => client.got.length > 0);
  assert.deepEqual(client.got, [[
    "from the peer",
    ["127.0.0.1", portOfAddr(a.addr)],
  ]]);
  assert.equal(client.connects, 1);
});

Deno.test("recvfrom() cuts a long datagram and keeps order; datagrams wait while readable() is false", async () => {
  using _cleanup = closing();
  class Slow extends Collector {
    ready = false;
    override readable(): boolean {
      return this.ready;
    }
    override handle_read(): void {
      const [data] = this.socket!.recvfrom(4);
      this.got.push([text(data), ""]);
    }
  }
  const server = new Slow();
  server.create_socket(AF_INET, SOCK_DGRAM);
  server.bind(["127.0.0.1", 0]);
  const port = server.getsockname(AF_INET)[1];
  using client = peer();
  const to = { transport: "udp", hostname: "127.0.0.1", port } as const;
  const count = MAX_INBOX_DATAGRAMS * 2;
  for (let i = 0; i < count; i++) {
    await client.send(bytes(`${i % 10}-datagram`), to);
  }
  server.ready = true;
  await loopUntil(() => server.got.length === count);
  assert.deepEqual(
    server.got.map(([data]) => data),
    Array.from({ length: count }, (_, i) => `${i % 10}-da`),
  );
});

Deno.test("sendto() binds an unbound socket and rejects bad input; send() needs connect()", async () => {
  using _cleanup = closing();
  using target = peer();
  const d = new Collector();
  d.create_socket(AF_INET, SOCK_DGRAM);
  assert.throws(() => d.getsockname(), Deno.errors.NotConnected);
  const got = target.receive();
  const to: Address = ["127.0.0.1", portOfAddr(target.addr)];
  assert.equal(d.socket!.sendto(bytes("first"), to), 5);
  const [, port] = d.getsockname(AF_INET);
  const [data, from] = await got;
  assert.equal(text(data), "first");
  assert.equal(portOfAddr(from), port);
  assert.throws(() => d.socket!.sendto(bytes("x"), "/tmp/path"), TypeError);
  assert.throws(() => d.socket!.sendto(bytes("x"), ["::1", 9]), TypeError);
  assert.throws(
    () => d.socket!.sendto(new Uint8Array(70000), to),
    RangeError,
  );
  assert.throws(
    () => d.socket!.sendto("text" as unknown as Uint8Array, to),
    TypeError,
  );
  assert.throws(() => d.send(bytes("x")), Deno.errors.NotConnected);
  assert.throws(() => d.socket!.recvfrom(10), Deno.errors.WouldBlock);
  assert.throws(() => d.socket!.shutdown(1), Deno.errors.NotConnected);
  assert.throws(() => d.bind(["127.0.0.1", 0]), Error);
});

Deno.test({
  name: "a UDP dispatcher serves a python3 socket client",
  ignore: !HAS_PYTHON,
  async fn() {
    using _cleanup = closing();
    class Echo extends Collector {
      override handle_read(): void {
        const [data, from] = this.socket!.recvfrom(2048);
        this.got.push([text(data), from]);
        this.socket!.sendto(data, from);
      }
    }
    const server = new Echo();
    server.create_socket(AF_INET, SOCK_DGRAM);
    server.bind(["127.0.0.1", 0]);
    const port = server.getsockname(AF_INET)[1];
    const script = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.connect(("127.0.0.1", int(sys.argv[1])))
for word in [b"spam", b"eggs"]:
    s.send(word)
    print(s.recv(100).decode(), flush=True)
`;
    const output = new Deno.Command("python3", {
      args: ["-c", script, String(port)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    await loopUntil(() => server.got.length === 2);
    const { code, stdout, stderr } = await output;
    assert.equal(code, 0, text(stderr));
    assert.equal(text(stdout), "spam\neggs\n");
  },
});

Deno.test("without the import, SOCK_DGRAM names the import; without --unstable-net, the flag", async (t) => {
  const cases: [name: string, args: string[], code: string, message: RegExp][] =
    [
      [
        "no import",
        ["eval"],
        `import { Dispatcher, SOCK_DGRAM } from "./mod.ts";
new Dispatcher().create_socket(2, SOCK_DGRAM);`,
        /import "@asyncore\/asyncore\/unstable-udp"/,
      ],
      [
        "no flag",
        ["eval"],
        `import "./unstable_udp.ts";
import { Dispatcher, SOCK_DGRAM } from "./mod.ts";
new Dispatcher().create_socket(2, SOCK_DGRAM);`,
        /--unstable-net/,
      ],
    ];
  for (const [name, args, code, message] of cases) {
    await t.step(name, async () => {
      const result = await new Deno.Command(Deno.execPath(), {
        args: [...args, code],
        cwd: new URL("..", import.meta.url),
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = text(result.stderr);
      assert.notEqual(result.code, 0);
      assert.match(stderr, /NotSupported: Cannot create socket/);
      assert.match(stderr, message);
    });
  }
});

Deno.test("a connected UDP dispatcher sending to a closed port sees no error (Deno has no connected UDP socket); its timeout notices the silence", async () => {
  using _cleanup = closing();
  // A port that was free a moment ago and has nobody listening now: the
  // kernel answers each datagram with an ICMP port unreachable, which Python's
  // connected socket reports as ConnectionRefusedError.
  const gone = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: 0,
  });
  const port = portOfAddr(gone.addr);
  gone.close();
  const events: string[] = [];
  class Client extends Dispatcher {
    override writable(): boolean {
      return !this.connected;
    }
    override handle_connect(): void {
      this.send(bytes("anyone?"));
      this.send(bytes("anyone at all?"));
    }
    override handle_read(): void {
      events.push(`read ${text(this.recv(2048))}`);
    }
    override handle_error(error: unknown): void {
      events.push(`error ${(error as Error).name}`);
      this.close();
    }
    override handle_timeout(): void {
      events.push("timeout");
      this.close();
    }
  }
  const client = new Client();
  client.create_socket(AF_INET, SOCK_DGRAM);
  client.timeout = 0.2;
  client.connect(["127.0.0.1", port]);
  await loopUntil(() => events.length > 0, { what: "the client heard" });
  assert.deepEqual(events, ["timeout"]);
});
