// Tests of socket.ts: the constants, address validation and conversion, and
// SocketObject (Python's socket methods, half-close) against real peers.

import assert from "node:assert/strict";
import {
  type Address,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  checkAddress,
  Dispatcher,
  familyOf,
  fromDenoAddr,
  IPPROTO_TCP,
  SHUT_RD,
  SHUT_WR,
  SO_KEEPALIVE,
  SO_REUSEADDR,
  SOCK_DGRAM,
  SOCK_STREAM,
  socket_map,
  SocketObject,
  SOL_SOCKET,
  TCP_NODELAY,
} from "../mod.ts";
import {
  bytes,
  closing,
  concat,
  HAS_PYTHON,
  loopbackPair,
  loopUntil,
  readAll,
  tempDir,
  text,
} from "./_helpers.ts";

Deno.test("the constants have Linux's values, as Python's socket module reports", () => {
  assert.equal(AF_UNIX, 1);
  assert.equal(AF_INET, 2);
  assert.equal(AF_INET6, 10);
  assert.equal(SOCK_STREAM, 1);
  assert.equal(SOCK_DGRAM, 2);
});

Deno.test({
  name: "the constants match python3's socket module on this host",
  ignore: !HAS_PYTHON || Deno.build.os !== "linux",
  async fn() {
    const { stdout } = await new Deno.Command("python3", {
      args: [
        "-c",
        "import socket as s; print(s.AF_UNIX, s.AF_INET, s.AF_INET6, s.SOCK_STREAM, s.SOCK_DGRAM)",
      ],
    }).output();
    assert.equal(
      new TextDecoder().decode(stdout).trim(),
      [AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM].join(" "),
    );
  },
});

Deno.test("familyOf() tells IPv4, IPv6 and Unix addresses apart", () => {
  assert.equal(familyOf(["127.0.0.1", 80]), AF_INET);
  assert.equal(familyOf(["localhost", 80]), AF_INET);
  assert.equal(familyOf(["", 0]), AF_INET);
  assert.equal(familyOf(["::1", 80]), AF_INET6);
  assert.equal(familyOf(["fe80::1%lo", 80]), AF_INET6);
  assert.equal(familyOf(["::ffff:127.0.0.1", 80]), AF_INET6);
  assert.equal(familyOf("/tmp/app.sock"), AF_UNIX);
  assert.equal(familyOf("relative.sock"), AF_UNIX);
});

Deno.test("familyOf() throws on a malformed address", () => {
  assert.throws(() => familyOf(42 as never), TypeError);
  assert.throws(() => familyOf("" as never), RangeError);
  assert.throws(() => familyOf(["127.0.0.1", 65536]), RangeError);
});

Deno.test("checkAddress() accepts every well-formed address", () => {
  for (
    const address of [
      ["127.0.0.1", 0],
      ["127.0.0.1", 65535],
      ["::1", 8080],
      ["example.com", 443],
      "/tmp/app.sock",
      "a",
    ]
  ) {
    checkAddress(address, "address");
  }
});

Deno.test("checkAddress() throws TypeError for the wrong shape, naming the argument", async (t) => {
  const cases: [string, unknown][] = [
    ["a number", 8080],
    ["null", null],
    ["undefined", undefined],
    ["an object", { hostname: "127.0.0.1", port: 80 }],
    ["an empty array", []],
    ["a one-item array", ["127.0.0.1"]],
    ["a three-item array", ["127.0.0.1", 80, 0]],
    ["a port as a string", ["127.0.0.1", "80"]],
    ["a host as a number", [127, 80]],
    ["a Symbol inside", [Symbol("host"), 80]],
  ];
  for (const [name, address] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => checkAddress(address, "target"),
        (e: unknown) =>
          e instanceof TypeError &&
          e.message.startsWith("Cannot use target: expected a [host, port]"),
      );
    });
  }
});

Deno.test("checkAddress() throws RangeError for a port or path out of range", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ["port -1", ["127.0.0.1", -1], /port "-1" is not an integer in 0\.\.65535/],
    ["port 65536", ["127.0.0.1", 65536], /port "65536"/],
    ["port 1.5", ["127.0.0.1", 1.5], /port "1\.5"/],
    ["port NaN", ["127.0.0.1", NaN], /port "NaN"/],
    ["port Infinity", ["127.0.0.1", Infinity], /port "Infinity"/],
    ["an empty path", "", /the Unix socket path is empty/],
  ];
  for (const [name, address, message] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => checkAddress(address, "address"),
        (e: unknown) =>
          e instanceof RangeError &&
          e.message.startsWith("Cannot use address") &&
          message.test(e.message),
      );
    });
  }
});

Deno.test("fromDenoAddr() converts TCP addresses to [host, port]", () => {
  assert.deepEqual(
    fromDenoAddr({ transport: "tcp", hostname: "127.0.0.1", port: 8080 }),
    ["127.0.0.1", 8080],
  );
  assert.deepEqual(
    fromDenoAddr({ transport: "tcp", hostname: "::1", port: 1 }),
    ["::1", 1],
  );
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  assert.deepEqual(fromDenoAddr(listener.addr), [
    "127.0.0.1",
    listener.addr.port,
  ]);
});

Deno.test("fromDenoAddr() converts Unix addresses to their path, '' when unnamed", async () => {
  assert.equal(
    fromDenoAddr({ transport: "unix", path: "/tmp/app.sock" }),
    "/tmp/app.sock",
  );
  assert.equal(
    fromDenoAddr({ transport: "unix", path: null } as unknown as Deno.Addr),
    "",
  );
  if (Deno.build.os === "windows") return;
  await using dir = await tempDir();
  const path = `${dir.path}/real.sock`;
  using listener = Deno.listen({ transport: "unix", path });
  assert.equal(fromDenoAddr(listener.addr), path);
  using client = await Deno.connect({ transport: "unix", path });
  using server = await listener.accept();
  assert.equal(fromDenoAddr(client.remoteAddr), path);
  // The client end of a Unix connection has no name.
  assert.equal(fromDenoAddr(server.remoteAddr), "");
});

Deno.test("fromDenoAddr() gives a VSOCK address as [cid, port]", () => {
  assert.deepEqual(
    fromDenoAddr({ transport: "vsock", cid: 3, port: 1024 } as Deno.Addr),
    ["3", 1024],
  );
});

Deno.test("familyOf() agrees with fromDenoAddr() for real listeners", async () => {
  using v4 = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  assert.equal(familyOf(fromDenoAddr(v4.addr)), AF_INET);
  try {
    using v6 = Deno.listen({ hostname: "::1", port: 0 });
    assert.equal(familyOf(fromDenoAddr(v6.addr)), AF_INET6);
  } catch (error) {
    // No IPv6 on this host.
    if (!(error instanceof Deno.errors.AddrNotAvailable)) throw error;
  }
  if (Deno.build.os === "windows") return;
  await using dir = await tempDir();
  using unix = Deno.listen({ transport: "unix", path: `${dir.path}/f.sock` });
  assert.equal(familyOf(fromDenoAddr(unix.addr)), AF_UNIX);
});

// SocketObject: Python's socket methods over Deno resources.

class Recorder extends Dispatcher {
  data: Uint8Array[] = [];
  closes = 0;
  override writable(): boolean {
    return false;
  }
  override handle_read(): void {
    const chunk = this.recv(65536);
    if (chunk.length > 0) this.data.push(chunk);
  }
  override handle_close(): void {
    this.closes++;
    this.close();
  }
}

Deno.test("accept() gives a SocketObject, with the listener's options, that new Handler(sock) wraps, as it wraps a raw Deno.Conn", async () => {
  using _cleanup = closing();
  const accepted: [SocketObject, Address][] = [];
  class Server extends Dispatcher {
    override handle_accepted(sock: SocketObject, addr: Address): void {
      accepted.push([sock, addr]);
      new Recorder(sock);
    }
  }
  const server = new Server();
  server.create_socket(AF_INET);
  server.socket!.setsockopt(IPPROTO_TCP, TCP_NODELAY, 0);
  server.bind(["127.0.0.1", 0]);
  server.listen(5);
  const [host, port] = server.socket!.getsockname(AF_INET);
  using client = await Deno.connect({ hostname: host, port });
  await loopUntil(() => accepted.length === 1);
  const [sock, addr] = accepted[0]!;
  assert.ok(sock instanceof SocketObject);
  assert.equal(
    sock.noDelay,
    false,
    "options set on the listener are inherited",
  );
  assert.deepEqual(sock.getsockname(AF_INET), ["127.0.0.1", port]);
  assert.deepEqual(sock.getpeername(), addr);
  assert.equal(addr[1], client.localAddr.port);
  assert.throws(() => sock.getsockname(AF_INET6), TypeError);
  const handler = [...socket_map.values()].at(-1) as Dispatcher;
  assert.equal(handler.socket, sock);
  assert.equal(handler.fileno(), sock.fileno());
  assert.deepEqual(handler.getpeername(AF_INET), addr);

  const [conn, peer] = await loopbackPair();
  using _peer = peer;
  const raw = new Recorder(conn);
  assert.ok(raw.socket instanceof SocketObject);
  assert.equal(raw.socket.raw, conn);
  assert.equal(raw.socket.conn, conn);
  assert.equal(raw.connected, true);
  assert.deepEqual(raw.getpeername(), fromDenoAddr(peer.localAddr));
});

Deno.test("setsockopt() sets TCP_NODELAY and SO_KEEPALIVE on the connection and names options Deno lacks", async () => {
  using _cleanup = closing();
  const [conn, peer] = await loopbackPair();
  using _peer = peer;
  const calls: string[] = [];
  const tcp = conn as Deno.TcpConn;
  tcp.setNoDelay = (on) => void calls.push(`nodelay ${on}`);
  tcp.setKeepAlive = (on) => void calls.push(`keepalive ${on}`);
  const d = new Recorder(conn);
  calls.length = 0;
  const sock = d.socket!;
  sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 0);
  sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1);
  sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  assert.deepEqual(calls, ["nodelay false", "nodelay false", "keepalive true"]);
  assert.throws(
    () => sock.setsockopt(SOL_SOCKET, 8, 1 << 20),
    (e: unknown) =>
      e instanceof Deno.errors.NotSupported && /SO_RCVBUF/.test(e.message),
  );
  assert.throws(
    () => sock.setsockopt(6, 99, 1),
    (e: unknown) =>
      e instanceof Deno.errors.NotSupported &&
      /option 99 at level 6/.test(e.message),
  );
  assert.throws(
    () => sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, "on" as unknown as number),
    TypeError,
  );
  sock.setblocking(false);
  assert.throws(() => sock.setblocking(true), Deno.errors.NotSupported);
});

Deno.test("setsockopt() before connect() applies once the connection is up", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  class Client extends Recorder {
    override writable(): boolean {
      return !this.connected;
    }
    override handle_connect(): void {}
  }
  const client = new Client();
  client.create_socket();
  client.socket!.setsockopt(IPPROTO_TCP, TCP_NODELAY, false);
  assert.equal(client.socket!.noDelay, false);
  client.connect(["127.0.0.1", listener.addr.port]);
  using _peer = await listener.accept();
  await loopUntil(() => client.connected);
  assert.ok(client.socket!.raw !== null);
  assert.equal(client.socket!.noDelay, false);
  assert.deepEqual(client.socket!.getsockname(AF_INET)[0], "127.0.0.1");
});

const HALF_CLOSE_PEER = `
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"hello")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
s.sendall(b"after your EOF")
s.close()
print(len(data), data == b"x" * len(data))
`;

Deno.test({
  name:
    "shutdown(SHUT_WR) sends queued bytes, then EOF, and reads go on until the peer's EOF (Python peer)",
  ignore: !HAS_PYTHON,
  async fn() {
    using _cleanup = closing();
    const size = 200 * 1024;
    class Handler extends Recorder {
      override handle_read(): void {
        super.handle_read();
        if (this.data.length === 1) {
          assert.equal(this.send(new Uint8Array(size).fill(120)), size);
          this.socket!.shutdown(SHUT_WR);
        }
      }
    }
    let handler: Handler | null = null;
    class Server extends Dispatcher {
      override handle_accepted(sock: SocketObject): void {
        handler = new Handler(sock);
      }
    }
    const server = new Server();
    server.create_socket();
    server.bind(["127.0.0.1", 0]);
    server.listen(5);
    const output = new Deno.Command("python3", {
      args: ["-c", HALF_CLOSE_PEER, String(server.getsockname(AF_INET)[1])],
      stdout: "piped",
      stderr: "piped",
    }).output();
    await loopUntil(() => handler !== null && handler.closes > 0);
    const result = await output;
    assert.equal(result.code, 0, text(result.stderr));
    assert.equal(text(result.stdout).trim(), `${size} True`);
    const h = handler as Handler | null;
    assert.equal(text(concat(h!.data)), "helloafter your EOF");
    assert.equal(h!.closes, 1);
  },
});

Deno.test("after shutdown(SHUT_WR) send() calls handle_close(), as Python's EPIPE does", async () => {
  using _cleanup = closing();
  const [conn, peer] = await loopbackPair();
  using _peer = peer;
  const d = new Recorder(conn);
  d.socket!.shutdown(SHUT_WR);
  assert.equal(d.send(bytes("late")), 0);
  assert.equal(d.closes, 1);
  assert.equal(text(await readAll(peer)), "");
});

Deno.test("shutdown(SHUT_RD) makes the channel read EOF; a SocketObject alone shuts its write side", async () => {
  using _cleanup = closing();
  const [conn, peer] = await loopbackPair();
  using _peer = peer;
  const d = new Recorder(conn);
  d.socket!.shutdown(SHUT_RD);
  await loopUntil(() => d.closes > 0);
  assert.deepEqual(d.data, []);
  assert.throws(() => d.socket!.shutdown(7), RangeError);

  const [alone, other] = await loopbackPair();
  using sock = new SocketObject(alone);
  sock.shutdown(SHUT_WR);
  assert.equal(text(await readAll(other)), "");
  assert.throws(() => sock.shutdown(SHUT_RD), Deno.errors.NotSupported);
  const unconnected = new Dispatcher();
  unconnected.create_socket();
  assert.throws(
    () => unconnected.socket!.shutdown(SHUT_WR),
    Deno.errors.NotConnected,
  );
});

Deno.test("a SocketObject prints like Python's socket repr: family, type, local and peer address", async (t) => {
  await t.step("a connection accepted from a python3 client", async () => {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    const client = HAS_PYTHON
      ? new Deno.Command("python3", {
        args: [
          "-c",
          `import socket, sys
s = socket.create_connection(("127.0.0.1", ${port}))
print(s.getsockname()[1], flush=True)
s.recv(1)`,
        ],
        stdout: "piped",
      }).spawn()
      : null;
    const raw = client === null
      ? await Deno.connect({ hostname: "127.0.0.1", port })
      : null;
    const sock = new SocketObject(await listener.accept());
    const reader = client?.stdout.getReader();
    const peerPort = reader === undefined
      ? (raw!.localAddr as Deno.NetAddr).port
      : Number(text((await reader.read()).value!));
    const fd = sock.fileno();
    const expected =
      `<SocketObject fd=${fd}, family=AF_INET, type=SOCK_STREAM, laddr=["127.0.0.1", ${port}], raddr=["127.0.0.1", ${peerPort}]>`;
    assert.equal(sock.toString(), expected);
    assert.equal(`${sock}`, expected);
    assert.equal(Deno.inspect(sock), expected);
    assert.ok(Deno.inspect([sock]).includes(expected));
    sock.close();
    assert.equal(
      sock.toString(),
      `<SocketObject [closed] fd=${fd}, family=AF_INET, type=SOCK_STREAM>`,
    );
    raw?.close();
    await reader?.cancel();
    await client?.status;
  });

  await t.step("unbound, listening, Unix and UDP sockets", async () => {
    using _cleanup = closing();
    const d = new Dispatcher();
    d.create_socket(AF_INET6);
    const fd = d.fileno();
    assert.equal(
      String(d.socket),
      `<SocketObject fd=${fd}, family=AF_INET6, type=SOCK_STREAM>`,
    );
    await using dir = await tempDir();
    const path = `${dir.path}/repr.sock`;
    const unix = new Dispatcher();
    unix.create_socket(AF_UNIX);
    unix.bind(path);
    unix.listen(5);
    assert.equal(
      String(unix.socket),
      `<SocketObject fd=${unix.fileno()}, family=AF_UNIX, type=SOCK_STREAM, laddr=${
        JSON.stringify(path)
      }>`,
    );
    const udp = new SocketObject(
      Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }),
    );
    const udpPort = (udp.raw as Deno.DatagramConn).addr as Deno.NetAddr;
    assert.equal(
      String(udp),
      `<SocketObject fd=${udp.fileno()}, family=AF_INET, type=SOCK_DGRAM, laddr=["127.0.0.1", ${udpPort.port}]>`,
    );
    udp.close();
  });
});
