// Bad input and faults: wrong arguments, refused and reset connections,
// closed channels, half-close, peers that never read, and what close_all()
// leaves behind (the op and resource sanitizers check every test).

import assert from "node:assert/strict";
import {
  type Address,
  AF_INET6,
  close_all,
  Dispatcher,
  DispatcherWithSend,
  FileWrapper,
  loop,
  socket_map,
} from "../mod.ts";
import {
  bytes,
  closing,
  connectDispatcher,
  EchoHandler,
  HAS_IPV6,
  HAS_PYTHON,
  loopUntil,
  readAll,
  tempDir,
  text,
  watchRejections,
} from "./_helpers.ts";

// A client connected to a raw Deno listener, with every hook recorded.
class Probe extends Dispatcher {
  events: string[] = [];
  override writable(): boolean {
    return !this.connected;
  }
  override handle_connect(): void {
    this.events.push("connect");
  }
  override handle_read(): void {
    this.events.push("read");
  }
  override handle_close(): void {
    this.events.push("close");
    this.close();
  }
  override handle_error(error: unknown): void {
    this.events.push(`error ${(error as Error).name}`);
    this.close();
  }
}

async function connectedProbe(
  listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
): Promise<[Probe, Deno.Conn]> {
  const probe = new Probe();
  probe.create_socket();
  const accepted = await connectDispatcher(probe, listener);
  probe.events.length = 0;
  return [probe, accepted];
}

class EchoServer extends Dispatcher {
  constructor() {
    super();
    this.create_socket();
    this.bind(["127.0.0.1", 0]);
    this.listen(5);
  }
  override handle_accepted(sock: Deno.Conn): void {
    new EchoHandler(sock);
  }
}

Deno.test("send() throws TypeError for data that is not a Uint8Array", async (t) => {
  using _cleanup = closing();
  const bad: [string, unknown][] = [
    ["a string", "spam"],
    ["an array of numbers", [1, 2, 3]],
    ["null", null],
    ["undefined", undefined],
    ["an ArrayBuffer", new ArrayBuffer(4)],
    ["a DataView", new DataView(new ArrayBuffer(4))],
    ["an Int8Array", new Int8Array(4)],
  ];
  const plain = new Dispatcher();
  plain.create_socket();
  const buffered = new DispatcherWithSend();
  buffered.create_socket();
  for (const [name, data] of bad) {
    await t.step(name, () => {
      for (const d of [plain, buffered]) {
        assert.throws(
          () => d.send(data as Uint8Array),
          (e: unknown) =>
            e instanceof TypeError && /^Cannot send/.test(e.message),
        );
      }
    });
  }
  assert.equal(buffered.out_buffer.length, 0);
});

Deno.test("recv() throws RangeError for a size that is not a positive integer, TypeError for a non-number", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [probe, accepted] = await connectedProbe(listener);
  using _peer = accepted;
  for (const size of [0, -1, 1.5, NaN, Infinity, -Infinity]) {
    assert.throws(() => probe.recv(size), RangeError, String(size));
  }
  for (const size of ["10", null, undefined, 10n, {}]) {
    assert.throws(
      () => probe.recv(size as unknown as number),
      TypeError,
      String(size),
    );
  }
  assert.deepEqual(probe.events, []);
});

Deno.test("recv_into() names its bad argument: TypeError for a wrong type, RangeError for a bad count", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [probe, accepted] = await connectedProbe(listener);
  using _peer = accepted;
  const buffer = new Uint8Array(8);
  for (const bad of [new ArrayBuffer(8), [1, 2], "abc", null]) {
    assert.throws(
      () => probe.recv_into(bad as unknown as Uint8Array),
      { name: "TypeError", message: /recv_into: buffer must be a Uint8Array/ },
    );
  }
  assert.throws(
    () => probe.recv_into(buffer, "4" as unknown as number),
    { name: "TypeError", message: /nbytes must be a number/ },
  );
  for (const nbytes of [-1, 1.5, 9, NaN]) {
    assert.throws(
      () => probe.recv_into(buffer, nbytes),
      { name: "RangeError", message: /recv_into: nbytes/ },
      String(nbytes),
    );
  }
  assert.throws(() => probe.recv_into(new Uint8Array(0)), {
    name: "RangeError",
    message: /buffer is empty/,
  });
  // Nothing arrived yet: the same WouldBlock as recv().
  assert.throws(() => probe.recv_into(buffer), Deno.errors.WouldBlock);
  assert.deepEqual(probe.events, []);
});

Deno.test("send() and recv() without a socket throw instead of touching nothing", () => {
  const d = new Dispatcher();
  assert.throws(() => d.send(bytes("x")), /^Error: Cannot send/);
  assert.throws(() => d.recv(1), /^Error: Cannot recv/);
});

Deno.test("recv() with nothing arrived throws WouldBlock", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [probe, accepted] = await connectedProbe(listener);
  using _peer = accepted;
  assert.throws(() => probe.recv(10), Deno.errors.WouldBlock);
  assert.equal(probe.connected, true);
  assert.deepEqual(probe.events, []);
});

Deno.test("send() before the connection is up takes nothing", () => {
  using _cleanup = closing();
  const d = new Probe();
  d.create_socket();
  assert.equal(d.send(bytes("early")), 0);
});

Deno.test("bind() throws AddrInUse synchronously for an address in use", async (t) => {
  using _cleanup = closing();
  await t.step("TCP", () => {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const d = new Dispatcher();
    d.create_socket();
    assert.throws(
      () => d.bind(["127.0.0.1", listener.addr.port]),
      Deno.errors.AddrInUse,
    );
    assert.equal(d.socket?.raw, null);
  });
  await t.step({
    name: "Unix",
    ignore: Deno.build.os === "windows",
    fn: async () => {
      await using dir = await tempDir();
      const path = `${dir.path}/taken.sock`;
      using _listener = Deno.listen({ transport: "unix", path });
      const d = new Dispatcher();
      d.create_socket(1);
      assert.throws(() => d.bind(path), Deno.errors.AddrInUse);
    },
  });
});

Deno.test("bind(), connect() and listen() reject bad arguments", async (t) => {
  using _cleanup = closing();
  const addresses: [string, unknown, ErrorConstructor][] = [
    ["a number", 42, TypeError],
    ["a one-item array", ["127.0.0.1"], TypeError],
    ["a port as a string", ["127.0.0.1", "80"], TypeError],
    ["a host as a number", [127, 80], TypeError],
    ["a port out of range", ["127.0.0.1", 70000], RangeError],
    ["a negative port", ["127.0.0.1", -1], RangeError],
    ["a fractional port", ["127.0.0.1", 1.5], RangeError],
    ["an empty path", "", RangeError],
  ];
  for (const [name, address, error] of addresses) {
    await t.step(`${name} → ${error.name}`, () => {
      const d = new Dispatcher();
      d.create_socket();
      for (const call of [d.bind, d.connect]) {
        assert.throws(
          () => call.call(d, address as Address),
          (e: unknown) =>
            e instanceof error && /^Cannot use address/.test(e.message),
        );
      }
    });
  }
  await t.step("listen() before bind() or with a bad backlog", () => {
    const d = new Dispatcher();
    d.create_socket();
    assert.throws(() => d.listen(5), /Cannot listen: call bind\(\) first/);
    d.bind(["127.0.0.1", 0]);
    assert.throws(() => d.listen(-1), RangeError);
    assert.throws(() => d.listen(1.5), RangeError);
    d.listen(0);
    assert.throws(() => d.bind(["127.0.0.1", 0]), /Cannot bind/);
  });
  await t.step("connect() before create_socket() or after bind()", () => {
    const d = new Dispatcher();
    assert.throws(
      () => d.connect(["127.0.0.1", 1]),
      /Cannot connect: call create_socket\(\) first/,
    );
    d.create_socket();
    d.bind(["127.0.0.1", 0]);
    assert.throws(() => d.connect(["127.0.0.1", 1]), /Cannot connect/);
  });
  await t.step("TLS over a Unix socket", () => {
    const d = new Dispatcher();
    d.create_socket(1);
    assert.throws(() => d.connect("/tmp/x.sock", { tls: true }), TypeError);
  });
});

Deno.test("a refused connect goes to handle_error() then handle_close(), and the loop keeps serving", async () => {
  using _cleanup = closing();
  const closedPort = (() => {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return listener.addr.port;
  })();
  class Refused extends Probe {
    override handle_error(error: unknown): void {
      this.events.push(`error ${(error as Error).name}`);
      // The default logs, then calls handle_close().
      void Dispatcher.prototype.handle_error.call(this, error);
    }
    override log_info(message: string, type = "info"): void {
      this.events.push(`${type}: ${message.split(" <")[0]}`);
    }
  }
  const refused = new Refused();
  refused.create_socket();
  refused.connect(["127.0.0.1", closedPort]);

  const server = new EchoServer();
  let reply = "";
  class EchoClient extends DispatcherWithSend {
    override handle_connect(): void {
      this.send(bytes("ping"));
    }
    override handle_read(): void {
      reply += text(this.recv(100));
    }
  }
  const client = new EchoClient();
  client.create_socket();
  client.connect(server.getsockname());

  await loopUntil(() => refused.events.includes("close") && reply === "ping");
  assert.deepEqual(refused.events, [
    "error ConnectionRefused",
    "error: uncaptured exception, closing channel",
    "close",
  ]);
  assert.equal(refused.fileno(), null);
  assert.equal(server.accepting, true);
});

// Connects, sends "hello", waits for the server's stream to start, then
// resets the connection (SO_LINGER 0) with data still in flight.
const RESET_MID_STREAM = `
import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"hello")
s.recv(1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
`;

Deno.test({
  name:
    "a peer that resets mid-stream gets handle_close(), with no error and no unhandled rejection",
  ignore: !HAS_PYTHON,
  async fn() {
    using rejections = watchRejections();
    using _cleanup = closing();
    const events: string[] = [];
    class Streamer extends Dispatcher {
      streaming = false;
      override writable(): boolean {
        return this.streaming;
      }
      override handle_read(): void {
        const data = this.recv(1024);
        if (text(data) === "hello") this.streaming = true;
      }
      override handle_write(): void {
        this.send(new Uint8Array(64 * 1024));
      }
      override handle_close(): void {
        events.push("close");
        this.close();
      }
      override handle_error(error: unknown): void {
        events.push(`error ${error}`);
        this.close();
      }
    }
    class Server extends EchoServer {
      override handle_accepted(sock: Deno.Conn): void {
        new Streamer(sock);
      }
    }
    const server = new Server();
    const [host, port] = server.getsockname() as [string, number];
    let result: Deno.CommandOutput | undefined;
    new Deno.Command("python3", {
      args: ["-c", RESET_MID_STREAM, host, String(port)],
      stdout: "null",
      stderr: "piped",
    }).output().then((output) => result = output);
    await loopUntil(() => result !== undefined && events.length > 0);
    assert.equal(result?.code, 0, text(result?.stderr ?? new Uint8Array()));
    assert.deepEqual(events, ["close"]);
    // The server survives and keeps accepting.
    await loop({ count: 3, timeout: 0.01 });
    assert.equal(server.accepting, true);
    assert.equal(socket_map.size, 1);
    assert.deepEqual(rejections.reasons, []);
  },
});

Deno.test("send() and recv() after close() call handle_close() and return nothing, as on a closed socket", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [probe, accepted] = await connectedProbe(listener);
  using _peer = accepted;
  probe.close();
  assert.equal(probe.send(bytes("late")), 0);
  assert.deepEqual(probe.events, ["close"]);
  assert.deepEqual(probe.recv(10), new Uint8Array(0));
  assert.deepEqual(probe.events, ["close", "close"]);
  assert.equal(probe.connected, false);
});

Deno.test("recv() at EOF calls handle_close() and returns an empty array", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [probe, accepted] = await connectedProbe(listener);
  await accepted.write(bytes("last words"));
  accepted.close();
  let data = "";
  let empty = 0;
  probe.handle_read = () => {
    const chunk = probe.recv(4);
    if (chunk.length === 0) empty++;
    data += text(chunk);
  };
  await loopUntil(() => probe.events.includes("close"));
  assert.equal(data, "last words");
  assert.equal(empty, 1);
  assert.deepEqual(probe.events, ["close"]);
});

Deno.test("recv_into() fills the buffer up to nbytes, then at EOF calls handle_close() once and returns 0", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [probe, accepted] = await connectedProbe(listener);
  await accepted.write(bytes("last words"));
  accepted.close();
  const buffer = new Uint8Array(16).fill(0x2e);
  let data = "";
  const counts: number[] = [];
  probe.handle_read = () => {
    const n = probe.recv_into(buffer, 3);
    counts.push(n);
    data += text(buffer.subarray(0, n));
  };
  await loopUntil(() => probe.events.includes("close"));
  assert.equal(data, "last words");
  assert.deepEqual(counts, [3, 3, 3, 1, 0]);
  // Only the first nbytes bytes of the buffer are ever written.
  assert.equal(text(buffer.subarray(3)), ".".repeat(13));
  assert.deepEqual(probe.events, ["close"]);
});

Deno.test("a client that shuts down its write side still gets the server's reply", async () => {
  using _cleanup = closing();
  class Upper extends Dispatcher {
    override writable(): boolean {
      return false;
    }
    override handle_read(): void {
      const data = this.recv(1024);
      if (data.length > 0) this.send(bytes(text(data).toUpperCase()));
    }
    // EOF only means the client is done sending: answer, then close.
    override handle_close(): void {
      this.send(bytes(" bye"));
      this.close();
    }
  }
  class Server extends EchoServer {
    override handle_accepted(sock: Deno.Conn): void {
      new Upper(sock);
    }
  }
  const server = new Server();
  const [hostname, port] = server.getsockname() as [string, number];
  const conn = await Deno.connect({ hostname, port });
  await conn.write(bytes("question"));
  await conn.closeWrite();
  let reply: string | undefined;
  readAll(conn).then((data) => reply = text(data));
  await loopUntil(() => reply !== undefined);
  assert.equal(reply, "QUESTION bye");
});

Deno.test("Nagle is off: write-write-read exchanges complete in both directions", async (t) => {
  const ROUNDS = 20;
  await t.step("accepted side writes twice per reply", async () => {
    using _cleanup = closing();
    class TwoWrites extends Dispatcher {
      override writable(): boolean {
        return false;
      }
      override handle_read(): void {
        if (this.recv(4).length === 0) return;
        this.send(bytes("po"));
        this.send(bytes("ng"));
      }
      override handle_close(): void {
        this.close();
      }
    }
    class Server extends EchoServer {
      override handle_accepted(sock: Deno.Conn): void {
        new TwoWrites(sock);
      }
    }
    const server = new Server();
    const [hostname, port] = server.getsockname() as [string, number];
    using conn = await Deno.connect({ hostname, port });
    conn.setNoDelay(true);
    let done = 0;
    const start = performance.now();
    const client = (async () => {
      const buf = new Uint8Array(4);
      for (let i = 0; i < ROUNDS; i++) {
        await conn.write(bytes("ping"));
        let got = 0;
        while (got < 4) {
          const n = await conn.read(buf.subarray(got));
          assert.notEqual(n, null);
          got += n!;
        }
        assert.equal(text(buf), "pong");
        done++;
      }
    })();
    await loopUntil(() => done === ROUNDS);
    await client;
    console.log(
      `accepted side: ${ROUNDS} rounds in ${
        (performance.now() - start).toFixed(1)
      } ms`,
    );
  });
  await t.step("connecting side writes twice per request", async () => {
    using _cleanup = closing();
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    let done = 0;
    class Client extends Dispatcher {
      override writable(): boolean {
        return !this.connected;
      }
      override handle_connect(): void {
        this.request();
      }
      request(): void {
        this.send(bytes("pi"));
        this.send(bytes("ng"));
      }
      override handle_read(): void {
        if (text(this.recv(4)) !== "pong") return;
        if (++done < ROUNDS) this.request();
      }
    }
    const client = new Client();
    client.create_socket();
    client.connect(["127.0.0.1", listener.addr.port]);
    const start = performance.now();
    const server = (async () => {
      using conn = await listener.accept();
      conn.setNoDelay(true);
      const buf = new Uint8Array(4);
      for (let i = 0; i < ROUNDS; i++) {
        let got = 0;
        while (got < 4) {
          const n = await conn.read(buf.subarray(got));
          if (n === null) return;
          got += n;
        }
        await conn.write(bytes("pong"));
      }
    })();
    await loopUntil(() => done === ROUNDS);
    client.close();
    await server;
    console.log(
      `connecting side: ${ROUNDS} rounds in ${
        (performance.now() - start).toFixed(1)
      } ms`,
    );
  });
});

Deno.test("a peer that never reads: send() returns 0 once the outbox is full, and close() still delivers every byte taken", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let taken = 0;
  const chunk = new Uint8Array(64 * 1024).map((_, i) => i % 253);
  class Filler extends Dispatcher {
    override writable(): boolean {
      return !this.connected;
    }
    override readable(): boolean {
      return false;
    }
    override handle_connect(): void {}
  }
  const filler = new Filler();
  filler.create_socket();
  filler.connect(["127.0.0.1", listener.addr.port]);
  const peer = await listener.accept();
  // One send per pass while the write pump moves bytes into the kernel,
  // until both are full.
  await loopUntil(() => {
    if (!filler.connected) return false;
    const n = filler.send(chunk);
    taken += n;
    return n === 0;
  }, { timeout: 0 });
  // Bounded: the outbox mark plus what the kernel's buffers hold.
  assert.ok(taken > 0);
  assert.ok(taken < 64 * 1024 * 1024, `${taken} bytes taken`);
  assert.equal(filler.send(chunk), 0);
  filler.close();
  const received = await readAll(peer);
  assert.equal(received.length, taken);
  for (let i = 0; i < received.length; i += 64 * 1024) {
    assert.deepEqual(
      received.subarray(i, i + 64 * 1024),
      chunk.subarray(0, Math.min(64 * 1024, received.length - i)),
    );
  }
});

Deno.test("bytes taken by send() right before close() are all delivered", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [probe, accepted] = await connectedProbe(listener);
  const received = readAll(accepted);
  const message = bytes("x".repeat(100_000) + "end");
  assert.equal(probe.send(message), message.length);
  probe.close();
  assert.equal(text(await received), text(message));
});

Deno.test("fileno() values are never reused after close", () => {
  using _cleanup = closing();
  const seen = new Set<number>();
  for (let round = 0; round < 3; round++) {
    const batch: Dispatcher[] = [];
    for (let i = 0; i < 50; i++) {
      const d = new Dispatcher();
      d.create_socket();
      const fd = d.fileno()!;
      assert.ok(!seen.has(fd), `fileno ${fd} reused`);
      seen.add(fd);
      batch.push(d);
    }
    const wrapper = new FileWrapper(new ReadableStream());
    assert.ok(!seen.has(wrapper.fileno()));
    seen.add(wrapper.fileno());
    wrapper.close();
    for (const d of batch) d.close();
    assert.ok(batch.every((d) => d.fileno() === null));
    assert.equal(socket_map.size, 0);
  }
  // A stale number never reaches a newer dispatcher.
  const d = new Dispatcher();
  d.create_socket();
  for (const fd of seen) assert.equal(socket_map.get(fd), undefined);
});

Deno.test("close_all() leaves no operation or resource behind", async () => {
  // Pending accept, reads, an in-flight write and an in-flight connect: the
  // sanitizers fail this test if close_all() misses any of them.
  const server = new EchoServer();
  const client = new DispatcherWithSend();
  client.create_socket();
  client.connect(server.getsockname());
  await loopUntil(() => client.connected && socket_map.size === 3);
  client.send(new Uint8Array(512 * 1024));
  const late = new Dispatcher();
  late.create_socket();
  late.connect(server.getsockname());
  await loop({ count: 1, timeout: 0 });
  close_all();
  assert.equal(socket_map.size, 0);
  assert.equal(server.accepting, false);
});

Deno.test("close_all() right after connect() cancels the connect", () => {
  const d = new Dispatcher();
  d.create_socket();
  d.connect(["127.0.0.1", 9]);
  close_all();
  assert.equal(d.connecting, false);
});

// A listener, and a Probe whose connect() to it is in flight.
function connectingProbe(): [Deno.TcpListener, Address, Probe] {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address: Address = ["127.0.0.1", listener.addr.port];
  const probe = new Probe();
  probe.create_socket();
  probe.connect(address);
  return [listener, address, probe];
}

Deno.test("connect() while a connect is in flight throws and leaves one connection", async () => {
  using _cleanup = closing();
  const [listener, address, probe] = connectingProbe();
  using _listener = listener;
  assert.throws(() => probe.connect(address), {
    name: "Error",
    message: `Cannot connect: already connecting to 127.0.0.1:${address[1]}`,
  });
  using accepted = await listener.accept();
  await loopUntil(() => probe.connected);
  assert.deepEqual(probe.events, ["connect"]);
  assert.deepEqual(probe.getpeername(), address);
  // The sanitizers fail the test if a second connection was opened.
  close_all();
  assert.equal(await accepted.read(new Uint8Array(1)), null);
});

Deno.test("bind() while a connect is in flight throws, as Python's EINVAL", async () => {
  using _cleanup = closing();
  const [listener, address, probe] = connectingProbe();
  using _listener = listener;
  assert.throws(() => probe.bind(["127.0.0.1", 0]), {
    name: "Error",
    message: `Cannot bind: the socket is connecting to 127.0.0.1:${address[1]}`,
  });
  using accepted = await listener.accept();
  await loopUntil(() => probe.connected);
  // No listener beside the connection: the local address is the connection's.
  const peer = accepted.remoteAddr as Deno.NetAddr;
  assert.deepEqual(probe.getsockname(), [peer.hostname, peer.port]);
  assert.deepEqual(probe.getpeername(), address);
  close_all();
});

Deno.test("close() takes a dispatcher out of every map add_channel() put it in", async () => {
  using _cleanup = closing();
  const other = new Map();
  const d = new Dispatcher();
  d.create_socket();
  d.add_channel(other);
  assert.equal(other.size, 1);
  d.close();
  assert.equal(socket_map.size, 0);
  assert.equal(other.size, 0);
  // Python's loop would fail with EBADF; here there is nothing left to wait for.
  await loop({ map: other, timeout: 30 });
});

Deno.test("an over-long host is cut in error messages", async (t) => {
  const host = "x".repeat(70_000);
  const shown = `${"x".repeat(64)}…`;
  await t.step("bind()", () => {
    using _cleanup = closing();
    const d = new Dispatcher();
    d.create_socket();
    assert.throws(() => d.bind([host, 0]), (error: Error) => {
      assert.ok(error.message.length < 300, `${error.message.length} chars`);
      assert.ok(
        error.message.startsWith(`Cannot bind: address ${shown}:0: `),
        error.message.slice(0, 200),
      );
      return true;
    });
  });
  await t.step("connect()", async () => {
    using _cleanup = closing();
    const probe = new Probe();
    const errors: Error[] = [];
    probe.handle_error = (error: unknown) => {
      errors.push(error as Error);
      probe.close();
    };
    probe.create_socket();
    probe.connect([host, 80]);
    await loopUntil(() => errors.length === 1);
    const [error] = errors;
    assert.ok(error!.message.length < 300, `${error!.message.length} chars`);
    assert.ok(
      error!.message.startsWith(`Cannot connect: ${shown}:80: `),
      error!.message.slice(0, 200),
    );
  });
});

Deno.test({
  name: "a host given as [::1] is shown in one pair of brackets",
  ignore: !HAS_IPV6,
  async fn() {
    using _cleanup = closing();
    // A port that was free a moment ago and has nobody listening now.
    const listener = Deno.listen({ hostname: "::1", port: 0 });
    const { port } = listener.addr;
    listener.close();
    const probe = new Probe();
    const errors: Error[] = [];
    probe.handle_error = (error: unknown) => {
      errors.push(error as Error);
      probe.close();
    };
    probe.create_socket(AF_INET6);
    probe.connect(["[::1]", port]);
    await loopUntil(() => errors.length === 1);
    assert.match(
      errors[0]!.message,
      new RegExp(`^Cannot connect: \\[::1\\]:${port}: `),
    );
  },
});
