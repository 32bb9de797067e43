// Tests of dispatcher.ts and _file_wrapper.ts: CPython's DispatcherTests,
// DispatcherWithSendTests and FileWrapperTest (test_asyncore.py) ported, plus
// what Deno adds (inspect, `using`, pipes). Python's test_strerror and
// test_resource_warning have no counterpart: there is no _strerror(), and
// Deno resources are checked by the test sanitizers instead of warnings.

import assert from "node:assert/strict";
import {
  type Address,
  AF_INET,
  AF_INET6,
  close_all,
  Dispatcher,
  dispatcher,
  dispatcher_with_send,
  DispatcherWithSend,
  file_dispatcher,
  file_wrapper,
  FileDispatcher,
  FileWrapper,
  SOCK_STREAM,
  socket_map,
  type SocketMap,
} from "../mod.ts";
import {
  bytes,
  closing,
  concat,
  HAS_IPV6,
  loopbackPair,
  loopUntil,
  readAll,
  text,
} from "./_helpers.ts";

// Replaces console[method] while `run` executes and returns the lines printed.
function capture(method: "log" | "error", run: () => void): string[] {
  const lines: string[] = [];
  const original = console[method];
  console[method] = (...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
  };
  try {
    run();
  } finally {
    console[method] = original;
  }
  return lines;
}

// Records log_info() calls instead of printing them, whatever the type.
class Quiet extends Dispatcher {
  logged: string[] = [];
  override log_info(message: string, type = "info"): void {
    this.logged.push(`${type}: ${message}`);
  }
}

Deno.test("a new Dispatcher is readable and writable", () => {
  const d = new Dispatcher();
  assert.equal(d.readable(), true);
  assert.equal(d.writable(), true);
  assert.equal(d.connected, false);
  assert.equal(d.accepting, false);
  assert.equal(d.connecting, false);
  assert.equal(d.closing, false);
  assert.equal(d.addr, null);
  assert.equal(d.socket, null);
  assert.equal(d.fileno(), null);
});

Deno.test("toString() and Deno.inspect() read like Python's repr", () => {
  using _cleanup = closing();
  const d = new Dispatcher();
  assert.match(d.toString(), /^<Dispatcher at 0x[0-9a-f]+>$/);
  assert.equal(Deno.inspect(d), d.toString());
  assert.equal(`${d}`, d.toString());
  assert.notEqual(new Dispatcher().toString(), d.toString());

  class Server extends Dispatcher {}
  const server = new Server();
  server.create_socket();
  server.bind(["127.0.0.1", 0]);
  server.listen(5);
  // The real port, not the 0 asked for.
  const port = (server.getsockname() as [string, number])[1];
  assert.notEqual(port, 0);
  assert.match(
    server.toString(),
    new RegExp(`^<Server listening 127\\.0\\.0\\.1:${port} at 0x[0-9a-f]+>$`),
  );
  assert.equal(Deno.inspect(server), server.toString());

  const client = new Dispatcher();
  client.connected = true;
  client.addr = "/tmp/app.sock";
  assert.match(
    client.toString(),
    /^<Dispatcher connected '\/tmp\/app\.sock' at 0x/,
  );
});

for (
  const [name, family, wildcard, loopback] of [
    ["IPv4", AF_INET, "0.0.0.0", "127.0.0.1"],
    ["IPv6", AF_INET6, "::", "::1"],
  ] as const
) {
  Deno.test({
    name: `${name}: bind(["", port]) listens on every interface, as in Python`,
    ignore: family === AF_INET6 && !HAS_IPV6,
    async fn() {
      using _cleanup = closing();
      const server = new Dispatcher();
      server.create_socket(family);
      server.bind(["", 0]);
      server.listen(5);
      const [host, port] = server.getsockname(family);
      assert.equal(host, wildcard);
      assert.deepEqual(server.addr, ["", 0]);
      let accepted: [unknown, unknown] | null = null;
      server.handle_accept = () => {
        accepted = server.accept();
      };
      using client = await Deno.connect({ hostname: loopback, port });
      await loopUntil(() => accepted !== null);
      const [conn, from] = accepted!;
      (conn as Deno.Conn).close();
      assert.deepEqual(from, [
        loopback,
        (client.localAddr as Deno.NetAddr).port,
      ]);
    },
  });
}

Deno.test("bind() to an address in use throws AddrInUse naming the address", () => {
  using _cleanup = closing();
  const first = new Dispatcher();
  first.create_socket();
  first.bind(["127.0.0.1", 0]);
  const [host, port] = first.getsockname() as [string, number];
  const second = new Dispatcher();
  second.create_socket();
  assert.throws(() => second.bind([host, port]), (error: unknown) => {
    assert.ok(error instanceof Deno.errors.AddrInUse);
    assert.equal(
      error.message,
      `Cannot bind: address 127.0.0.1:${port} is in use`,
    );
    assert.ok(error.cause instanceof Deno.errors.AddrInUse);
    assert.equal((error as { code?: string }).code, "EADDRINUSE");
    return true;
  });
});

Deno.test("a second listen() throws", () => {
  using _cleanup = closing();
  const server = new Dispatcher();
  server.create_socket();
  server.bind(["127.0.0.1", 0]);
  server.listen(5);
  assert.throws(
    () => server.listen(5),
    {
      name: "Error",
      message: "Cannot listen: the socket is already listening",
    },
  );
  assert.equal(server.accepting, true);
});

Deno.test("a failed connect reaches handle_error() with a message naming the address", async (t) => {
  // A port nothing listens on: bind one, then free it.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const freePort = probe.addr.port;
  probe.close();
  const cases: [Address, RegExp, (new () => Error) | null][] = [
    [
      ["host.that-does-not-resolve.invalid", 80],
      /^Cannot connect: host\.that-does-not-resolve\.invalid:80: /,
      null,
    ],
    [
      ["127.0.0.1", freePort],
      new RegExp(`^Cannot connect: 127\\.0\\.0\\.1:${freePort}: `),
      Deno.errors.ConnectionRefused,
    ],
  ];
  for (const [address, message, errorClass] of cases) {
    await t.step(String(address[0]), async () => {
      using _cleanup = closing();
      const errors: unknown[] = [];
      class Client extends Quiet {
        override handle_error(error: unknown): void {
          errors.push(error);
          this.close();
        }
      }
      const client = new Client();
      client.create_socket();
      client.connect(address);
      await loopUntil(() => errors.length > 0, { what: "the connect failed" });
      const error = errors[0] as Error;
      assert.match(error.message, message);
      if (errorClass !== null) assert.ok(error instanceof errorClass);
      assert.ok(error.cause instanceof Error);
    });
  }
});

Deno.test("toString() of an accepted connection shows the peer", async () => {
  using _cleanup = closing();
  const [accepted, client] = await loopbackPair();
  using _client = client;
  const handler = new Dispatcher(accepted);
  assert.match(
    handler.toString(),
    new RegExp(
      `^<Dispatcher connected 127\\.0\\.0\\.1:${client.localAddr.port} at 0x`,
    ),
  );
});

Deno.test("log() writes 'log: message' lines to stderr", () => {
  const d = new Dispatcher();
  const l1 = "Lovely spam! Wonderful spam!";
  const l2 = "I don't like spam!";
  const lines = capture("error", () => {
    d.log(l1);
    d.log(l2);
  });
  assert.deepEqual(lines, [`log: ${l1}`, `log: ${l2}`]);
});

Deno.test("log_info() writes 'type: message' lines to stdout", () => {
  const d = new Dispatcher();
  const l1 = "Have you got anything without spam?";
  const l2 = "Why can't she have egg bacon spam and sausage?";
  const l3 = "THAT'S got spam in it!";
  const lines = capture("log", () => {
    d.log_info(l1, "EGGS");
    d.log_info(l2);
    d.log_info(l3, "SPAM");
  });
  assert.deepEqual(lines, [`EGGS: ${l1}`, `info: ${l2}`, `SPAM: ${l3}`]);
});

Deno.test("log_info() skips the types in ignore_log_types", () => {
  const d = new Dispatcher();
  assert.deepEqual([...d.ignore_log_types], ["warning"]);
  assert.deepEqual(capture("log", () => d.log_info("hidden", "warning")), []);
  d.ignore_log_types = new Set(["info"]);
  const lines = capture("log", () => {
    d.log_info("hidden");
    d.log_info("shown", "warning");
  });
  assert.deepEqual(lines, ["warning: shown"]);
  // Assigning on one instance leaves the shared default alone.
  assert.deepEqual([...new Dispatcher().ignore_log_types], ["warning"]);
});

// The hooks whose defaults only warn, and what they print.
function callDefaultHooks(d: Dispatcher): void {
  d.handle_expt();
  d.handle_read();
  d.handle_write();
  d.handle_connect();
}

const DEFAULT_HOOK_WARNINGS = [
  "warning: unhandled incoming priority event",
  "warning: unhandled read event",
  "warning: unhandled write event",
  "warning: unhandled connect event",
];

Deno.test("the default hooks print 'unhandled' warnings once warnings are not ignored", () => {
  const d = new Dispatcher();
  d.ignore_log_types = new Set();
  const lines = capture("log", () => callDefaultHooks(d));
  assert.deepEqual(lines, DEFAULT_HOOK_WARNINGS);
});

Deno.test("the default hooks report through log_info() with type 'warning'", () => {
  const d = new Quiet();
  const printed = capture("log", () => callDefaultHooks(d));
  assert.deepEqual(printed, []);
  assert.deepEqual(d.logged, DEFAULT_HOOK_WARNINGS);
});

Deno.test("the default handle_close() warns and closes", () => {
  const d = new Quiet();
  d.create_socket();
  assert.equal(socket_map.size, 1);
  d.handle_close();
  assert.deepEqual(d.logged, ["warning: unhandled close event"]);
  assert.equal(socket_map.size, 0);
  assert.equal(d.fileno(), null);
});

Deno.test("the default handle_accepted() closes the connection and warns", async () => {
  const [conn, client] = await loopbackPair();
  using _client = client;
  const d = new Quiet();
  d.handle_accepted(conn, ["127.0.0.1", client.localAddr.port]);
  assert.deepEqual(d.logged, ["warning: unhandled accepted event"]);
  // The server side is closed, so the client reads EOF.
  assert.equal(await client.read(new Uint8Array(1)), null);
});

Deno.test("the default handle_error() logs a compact traceback and closes", () => {
  const d = new Quiet();
  d.create_socket();
  d.handle_error(new RangeError("spam"));
  assert.equal(d.logged.length, 2);
  assert.match(
    d.logged[0]!,
    /^error: uncaptured exception, closing channel <Quiet at 0x[0-9a-f]+> \(RangeError:spam \[.*\]\)$/,
  );
  assert.equal(d.logged[1], "warning: unhandled close event");
  assert.equal(socket_map.size, 0);
});

Deno.test("handle_error() survives a value that is not an Error and a broken toString()", () => {
  class Broken extends Quiet {
    override toString(): string {
      throw new Error("no repr");
    }
  }
  const d = new Broken();
  d.handle_error("just a string");
  assert.match(
    d.logged[0]!,
    /^error: uncaptured exception, closing channel <toString\(\) failed for object at 0x[0-9a-f]+> \(just a string\)$/,
  );
});

Deno.test("create_socket() joins socket_map under a fresh fileno()", () => {
  using _cleanup = closing();
  const d = new Dispatcher();
  d.create_socket();
  assert.deepEqual(d.family_and_type, [AF_INET, SOCK_STREAM]);
  const fd = d.fileno();
  assert.equal(typeof fd, "number");
  assert.equal(socket_map.get(fd!), d);
  d.del_channel();
  assert.equal(d.fileno(), null);
  assert.equal(socket_map.size, 0);
});

Deno.test("add_channel() and del_channel() move a dispatcher between maps", () => {
  const map: SocketMap = new Map();
  using _cleanup = closing(map);
  const d = new Dispatcher(null, map);
  d.create_socket();
  assert.equal(map.size, 1);
  assert.equal(socket_map.size, 0);
  const fd = d.fileno()!;
  d.del_channel();
  assert.equal(map.size, 0);
  assert.throws(() => d.add_channel(), /Cannot add channel/);
  d.create_socket();
  assert.notEqual(d.fileno(), fd);
  assert.equal(map.get(d.fileno()!), d);
});

Deno.test("a Dispatcher wrapping an accepted connection is connected", async () => {
  using _cleanup = closing();
  const [accepted, client] = await loopbackPair();
  using _client = client;
  const d = new Dispatcher(accepted);
  assert.equal(d.connected, true);
  assert.equal(d.accepting, false);
  assert.deepEqual(d.addr, ["127.0.0.1", client.localAddr.port]);
  assert.deepEqual(d.getpeername(), ["127.0.0.1", client.localAddr.port]);
  assert.deepEqual(d.getsockname(), ["127.0.0.1", client.remoteAddr.port]);
});

Deno.test("a Dispatcher wrapping a listener is accepting", () => {
  using _cleanup = closing();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const d = new Dispatcher(listener);
  assert.equal(d.accepting, true);
  assert.equal(d.connected, false);
  assert.deepEqual(d.getsockname(), ["127.0.0.1", listener.addr.port]);
  assert.throws(() => d.getpeername(), Deno.errors.NotConnected);
});

Deno.test("getsockname() and getpeername() throw NotConnected before bind or connect", () => {
  using _cleanup = closing();
  const d = new Dispatcher();
  assert.throws(() => d.getsockname(), Deno.errors.NotConnected);
  d.create_socket();
  assert.throws(() => d.getsockname(), Deno.errors.NotConnected);
  assert.throws(() => d.getpeername(), Deno.errors.NotConnected);
});

Deno.test("close() is idempotent and leaves every flag down", () => {
  const d = new Dispatcher();
  d.create_socket();
  d.bind(["127.0.0.1", 0]);
  d.listen(5);
  d.close();
  d.close();
  assert.equal(d.accepting, false);
  assert.equal(d.connected, false);
  assert.equal(d.fileno(), null);
  assert.equal(socket_map.size, 0);
});

Deno.test("a bound listener is closed even if listen() was never called", () => {
  const d = new Dispatcher();
  d.create_socket();
  d.bind(["127.0.0.1", 0]);
  d.close();
});

Deno.test("`using` closes a dispatcher at the end of the block", () => {
  {
    using server = new Dispatcher();
    server.create_socket();
    server.bind(["127.0.0.1", 0]);
    server.listen(5);
    assert.equal(socket_map.size, 1);
  }
  assert.equal(socket_map.size, 0);
});

Deno.test("Python's lowercase class names are exported from mod.ts", () => {
  assert.equal(dispatcher, Dispatcher);
  assert.equal(dispatcher_with_send, DispatcherWithSend);
  assert.equal(file_dispatcher, FileDispatcher);
  assert.equal(file_wrapper, FileWrapper);
});

// CPython's dispatcherwithsend_noread.
class SendOnly extends DispatcherWithSend {
  /** One connecting to `listener`. */
  static to(listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>): SendOnly {
    const d = new SendOnly();
    d.create_socket();
    d.connect(["127.0.0.1", listener.addr.port]);
    return d;
  }
  override readable(): boolean {
    return false;
  }
  override handle_connect(): void {}
}

// Reads from the first connection to `listener` until a newline, like
// CPython's capture_server, and returns what came before it.
async function captureLine(listener: Deno.Listener): Promise<Uint8Array> {
  using conn = await listener.accept();
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(10);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    const chunk = buf.slice(0, n);
    const end = chunk.indexOf(10);
    if (end >= 0) {
      chunks.push(chunk.subarray(0, end));
      break;
    }
    chunks.push(chunk);
  }
  return concat(chunks);
}

Deno.test("DispatcherWithSend.send() delivers over a real connection", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const captured = captureLine(listener);
  const data = bytes("Suppose there isn't a 16-ton weight?");
  const d = SendOnly.to(listener);
  // Sent before the connection is up: buffered, not lost.
  assert.equal(d.send(data), data.length);
  assert.equal(d.out_buffer.length, data.length);
  d.send(data);
  d.send(bytes("\n"));
  await loopUntil(() => d.connected && d.out_buffer.length === 0);
  assert.equal(text(await captured), text(data) + text(data));
});

Deno.test("DispatcherWithSend drains out_buffer larger than the outbox", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received = listener.accept().then(readAll);
  const d = SendOnly.to(listener);
  await loopUntil(() => d.connected);
  const data = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
  assert.equal(d.send(data), data.length);
  assert.ok(d.out_buffer.length > 0, "1 MiB cannot fit the outbox at once");
  assert.ok(d.writable());
  await loopUntil(() => d.out_buffer.length === 0);
  assert.equal(d.writable(), false);
  d.close();
  assert.deepEqual(await received, data);
});

Deno.test("DispatcherWithSend keeps its own copy of bytes it could not send yet", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received = listener.accept().then(readAll);
  const d = SendOnly.to(listener);
  const data = bytes("original");
  d.send(data);
  data.fill(0x21);
  await loopUntil(() => d.connected && d.out_buffer.length === 0);
  d.close();
  assert.equal(text(await received), "original");
});

Deno.test("DispatcherWithSend with debug logs each send", async () => {
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received = listener.accept().then(readAll);
  const logged: string[] = [];
  class Debug extends SendOnly {
    override log_info(message: string, type = "info"): void {
      logged.push(`${type}: ${message}`);
    }
  }
  const d = new Debug();
  d.debug = true;
  d.create_socket();
  d.connect(["127.0.0.1", listener.addr.port]);
  d.send(bytes("12345"));
  await loopUntil(() => d.connected && d.out_buffer.length === 0);
  d.close();
  assert.equal(text(await received), "12345");
  assert.deepEqual(logged, ["info: sending 5 bytes"]);
});

const SLEEPING = "It's not dead, it's sleeping!";

async function withTestFile(
  run: (path: string) => Promise<void>,
): Promise<void> {
  const path = await Deno.makeTempFile({ prefix: "asyncore_test_" });
  try {
    await Deno.writeTextFile(path, SLEEPING);
    await run(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("FileWrapper.recv() and read() read a file", async () => {
  await withTestFile(async (path) => {
    const file = await Deno.open(path);
    const w = new FileWrapper(file);
    assert.equal(typeof w.fileno(), "number");
    assert.ok(w.fileno() >= 0);
    assert.equal(text(await w.recv(13)), "It's not dead");
    const buf = new Uint8Array(6);
    assert.equal(await w.read(buf), 6);
    assert.equal(text(buf), ", it's");
    w.close();
    assert.equal(w.fileno(), -1);
    await assert.rejects(w.read(new Uint8Array(1)), Deno.errors.BadResource);
  });
});

Deno.test("FileWrapper.write() and send() append to a file", async () => {
  await withTestFile(async (path) => {
    const w = new FileWrapper(await Deno.open(path, { append: true }));
    await w.write(bytes("Come again?"));
    assert.equal(await w.send(bytes("I want to buy some cheese.")), 26);
    w.close();
    assert.equal(
      await Deno.readTextFile(path),
      SLEEPING + "Come again?I want to buy some cheese.",
    );
  });
});

Deno.test("FileWrapper rejects bad input", async () => {
  await withTestFile(async (path) => {
    using w = new FileWrapper(await Deno.open(path));
    await assert.rejects(w.recv(0), RangeError);
    await assert.rejects(w.recv(1.5), RangeError);
    await assert.rejects(
      w.send("text" as unknown as Uint8Array),
      TypeError,
    );
    // Opened for reading only: writing is refused by the file itself.
    await assert.rejects(w.write(bytes("x")));
  });
  assert.throws(() => new FileWrapper(42 as never), TypeError);
  assert.throws(() => new FileWrapper(null as never), TypeError);
});

Deno.test("FileWrapper over a one-way stream refuses the other direction", async () => {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes("abcdef"));
      controller.close();
    },
  });
  using w = new FileWrapper(stream);
  assert.equal(text(await w.recv(4)), "abcd");
  assert.equal(text(await w.recv(4)), "ef");
  assert.equal((await w.recv(4)).length, 0);
  await assert.rejects(w.write(bytes("x")), Deno.errors.BadResource);
});

Deno.test("FileWrapper.close() is safe twice and after its file was closed", async () => {
  await withTestFile(async (path) => {
    const file = await Deno.open(path);
    const w = new FileWrapper(file);
    // Python's test closes the duplicated descriptor behind the wrapper's back.
    file.close();
    w.close();
    assert.equal(w.fileno(), -1);
    w.close();
  });
});

Deno.test("FileDispatcher reads a file through the loop", async () => {
  await withTestFile(async (path) => {
    using _cleanup = closing();
    const data: Uint8Array[] = [];
    class Reader extends FileDispatcher {
      override handle_read(): void {
        data.push(this.recv(29));
      }
    }
    const d = new Reader(await Deno.open(path));
    assert.equal(d.connected, true);
    await loopUntil(() => text(concat(data)) === SLEEPING, { use_poll: true });
  });
});

Deno.test("FileDispatcher closes the file at EOF through handle_close()", async () => {
  await withTestFile(async (path) => {
    using _cleanup = closing();
    let closed = false;
    const data: Uint8Array[] = [];
    class Reader extends FileDispatcher {
      override writable(): boolean {
        return false;
      }
      override handle_read(): void {
        data.push(this.recv(8));
      }
      override handle_close(): void {
        closed = true;
        this.close();
      }
    }
    new Reader(new FileWrapper(await Deno.open(path)));
    await loopUntil(() => closed);
    assert.equal(text(concat(data)), SLEEPING);
    assert.equal(socket_map.size, 0);
  });
});

Deno.test({
  name: "FileDispatcher talks to a child process through its pipes",
  ignore: Deno.build.os === "windows",
  async fn() {
    using _cleanup = closing();
    const child = new Deno.Command("cat", {
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const message = "spam, spam, spam, eggs and spam\n";
    let reply = "";
    class Cat extends FileDispatcher {
      override writable(): boolean {
        return false;
      }
      override handle_read(): void {
        reply += text(this.recv(1024));
        if (reply === message) this.close();
      }
    }
    const cat = new Cat({ readable: child.stdout, writable: child.stdin });
    assert.equal(cat.send(bytes(message)), message.length);
    await loopUntil(() => reply === message);
    // Closing the dispatcher closed cat's stdin, so cat exits.
    const status = await child.status;
    assert.equal(status.success, true);
  },
});

Deno.test("FileDispatcher accepts a FileWrapper and reports no socket address", async () => {
  await withTestFile(async (path) => {
    using _cleanup = closing();
    const wrapper = new FileWrapper(await Deno.open(path));
    const d = new FileDispatcher(wrapper);
    assert.equal(d.socket?.raw, wrapper);
    assert.throws(() => d.getsockname(), Deno.errors.NotConnected);
    assert.throws(() => d.getpeername(), Deno.errors.NotConnected);
  });
});

Deno.test("set_socket() wraps an existing connection", async () => {
  using _cleanup = closing();
  const [conn, client] = await loopbackPair();
  using _client = client;
  const d = new Dispatcher();
  d.set_socket(conn);
  assert.equal(d.socket?.raw, conn);
  assert.equal(socket_map.get(d.fileno()!), d);
  const address: Address = d.getpeername();
  assert.deepEqual(address, ["127.0.0.1", client.localAddr.port]);
});

Deno.test("the dispatcher-wide map can be replaced per dispatcher", () => {
  const map: SocketMap = new Map();
  using _cleanup = closing(map);
  const d = new Dispatcher(null, map);
  d.create_socket();
  assert.equal(map.get(d.fileno()!), d);
  close_all(map);
  assert.equal(map.size, 0);
});
