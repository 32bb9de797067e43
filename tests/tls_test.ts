// TLS: a TLS listener (bind() with a certificate) and STARTTLS on either side
// (start_tls()), against real peers: Deno's own TLS client and server,
// Python's ssl module, and each other. The certificates are test fixtures
// (tests/fixtures/make_certs.sh).

import assert from "node:assert/strict";
import {
  AsyncChat,
  Dispatcher,
  DispatcherWithSend,
  SHUT_WR,
  SimpleProducer,
  socket_map,
} from "../mod.ts";
import {
  bytes,
  CA,
  CA_PATH,
  CERT,
  CERT_PATH,
  closing,
  HAS_PYTHON,
  KEY,
  KEY_PATH,
  loopbackPair,
  loopUntil,
  portOf,
  python,
  readAll,
  text,
  watchRejections,
  writeAll,
} from "./_helpers.ts";

class Echo extends DispatcherWithSend {
  static closed = 0;
  static errors: unknown[] = [];
  override handle_read(): void {
    const data = this.recv(8192);
    if (data.length > 0) this.send(data);
  }
  override handle_error(error: unknown): void {
    Echo.errors.push(error);
    this.close();
  }
  override handle_close(): void {
    Echo.closed++;
    this.close();
  }
}

class TlsEchoServer extends Dispatcher {
  constructor() {
    super();
    this.create_socket();
    this.bind(["127.0.0.1", 0], { tls: { cert: CERT, key: KEY } });
    this.listen(5);
  }
  override handle_accepted(sock: Deno.Conn): void {
    new Echo(sock);
  }
}

/** Lines in, lines out: each record goes to `onLine`. */
class LineChat extends AsyncChat {
  lines: string[] = [];
  errors: unknown[] = [];
  closed = false;
  onLine: (line: string) => void | Promise<void> = () => {};
  constructor(sock: Deno.Conn | null = null) {
    super(sock);
    this.set_terminator("\r\n");
  }
  override collect_incoming_data(data: Uint8Array): void {
    this._collect_incoming_data(data);
  }
  override found_terminator(): void | Promise<void> {
    const line = text(this._get_data());
    this.lines.push(line);
    return this.onLine(line);
  }
  override handle_error(error: unknown): void {
    this.errors.push(error);
    this.close();
  }
  override handle_close(): void {
    this.closed = true;
    this.close();
  }
}

/** A LineChat client connecting to a LineChat server: `[client, server]`. */
async function chatPair(): Promise<[LineChat, LineChat]> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const client = new LineChat();
  client.create_socket();
  client.connect(["127.0.0.1", listener.addr.port]);
  return [client, new LineChat(await accepted)];
}

Deno.test("Dispatcher.bind() with tls serves TLS to Deno's TLS client", async () => {
  using _ = closing();
  const server = new TlsEchoServer();
  const conn = await Deno.connectTls({
    hostname: "localhost",
    port: portOf(server.getsockname()),
    caCerts: [CA],
  });
  const message = "hello over TLS\n".repeat(1000);
  const sent = writeAll(conn, bytes(message)).then(() => conn.closeWrite());
  const received = readAll(conn);
  let got = "";
  received.then((data) => (got = text(data)));
  await loopUntil(() => got.length > 0, { what: "the echo came back" });
  await sent;
  assert.equal(got, message);
});

Deno.test({
  name: "Dispatcher.bind() with tls serves TLS to Python's ssl client",
  ignore: !HAS_PYTHON,
  fn: async () => {
    using _ = closing();
    const server = new TlsEchoServer();
    const child = python(
      `import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
with socket.create_connection(("127.0.0.1", int(sys.argv[2]))) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"ping from python")
        print(s.recv(100).decode(), s.version())`,
      [CA_PATH, String(portOf(server.getsockname()))],
    );
    let output: Deno.CommandOutput | null = null;
    child.output().then((out) => (output = out));
    Echo.closed = 0;
    Echo.errors = [];
    // Python closes without TLS close_notify: an ordinary end, not an error.
    await loopUntil(() => output !== null && Echo.closed === 1, {
      what: "python exited and the server closed its channel",
    });
    const out = output as Deno.CommandOutput | null;
    assert.equal(text(out!.stderr), "");
    assert.match(text(out!.stdout), /^ping from python TLSv1\.[23]\n$/);
    assert.deepEqual(Echo.errors, []);
  },
});

Deno.test("Dispatcher.connect() with tls connects to the address and checks serverName against the certificate", async () => {
  using _ = closing();
  const server = new TlsEchoServer();
  const client = new LineChat();
  client.create_socket();
  // asyncore.test is in the certificate and resolves nowhere (RFC 6761):
  // only the address given is connected to.
  client.connect(["127.0.0.1", portOf(server.getsockname())], {
    tls: { caCerts: [CA], serverName: "asyncore.test" },
  });
  client.push(bytes("over TLS\r\n"));
  await loopUntil(() => client.lines.length > 0, { what: "the echo" });
  assert.deepEqual(client.lines, ["over TLS"]);
  assert.deepEqual(client.errors, []);
});

Deno.test("Dispatcher.start_tls() on a connection that is already TLS throws", async () => {
  using _ = closing();
  const server = new TlsEchoServer();
  const client = new LineChat();
  client.create_socket();
  client.connect(["127.0.0.1", portOf(server.getsockname())], {
    tls: { caCerts: [CA], serverName: "localhost" },
  });
  client.push(bytes("over TLS\r\n"));
  await loopUntil(() => client.lines.length > 0, { what: "the echo" });
  assert.throws(
    () => client.start_tls({ caCerts: [CA] }),
    { message: "Cannot start TLS: the connection is already TLS" },
  );
  // After STARTTLS, too.
  const [plain, peer] = await chatPair();
  peer.onLine = async (line) => {
    peer.push(bytes("220 go ahead\r\n"));
    if (line === "STARTTLS") await peer.start_tls({ cert: CERT, key: KEY });
  };
  let upgraded = false;
  plain.onLine = async () => {
    await plain.start_tls({ caCerts: [CA], serverName: "localhost" });
    upgraded = true;
  };
  plain.push(bytes("STARTTLS\r\n"));
  await loopUntil(() => upgraded, { what: "the upgrade" });
  assert.throws(
    () => plain.start_tls({ caCerts: [CA], serverName: "localhost" }),
    { message: "Cannot start TLS: the connection is already TLS" },
  );
  assert.throws(
    () => peer.start_tls({ cert: CERT, key: KEY }),
    { message: "Cannot start TLS: the connection is already TLS" },
  );
  assert.deepEqual(client.errors, []);
  assert.deepEqual(plain.errors, []);
});

Deno.test("sends of one turn on a TLS connection go out in one write (Nagle stays on there)", async () => {
  using _ = closing();
  using listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: CERT,
    key: KEY,
  });
  const client = await Deno.connectTls({
    hostname: "localhost",
    port: listener.addr.port,
    caCerts: [CA],
  });
  const conn = await listener.accept();
  const writes: number[] = [];
  const write = conn.write.bind(conn);
  conn.write = (p: Uint8Array) => {
    writes.push(p.length);
    return write(p);
  };
  const server = new Dispatcher(conn);
  server.handle_read = () => {
    const data = server.recv(100);
    // A reply in two pieces: without TCP_NODELAY the second small write
    // would wait for the client's delayed ACK.
    server.send(data.subarray(0, 1));
    server.send(data.subarray(1));
  };
  server.writable = () => false;
  await client.write(bytes("ping"));
  const reply = new Uint8Array(4);
  let got = 0;
  (async () => {
    while (got < 4) got += (await client.read(reply.subarray(got)))!;
  })();
  await loopUntil(() => got === 4, { what: "the reply arrived" });
  assert.equal(text(reply), "ping");
  assert.deepEqual(writes, [4]);
  client.close();
});

Deno.test("Dispatcher.bind() rejects TLS settings that cannot work", () => {
  using _ = closing();
  const server = new Dispatcher();
  server.create_socket();
  assert.throws(
    // @ts-expect-error: no key
    () => server.bind(["127.0.0.1", 0], { tls: { cert: CERT } }),
    TypeError,
  );
  const unix = new Dispatcher();
  unix.create_socket(1);
  assert.throws(
    () => unix.bind("/tmp/x.sock", { tls: { cert: CERT, key: KEY } }),
    /Cannot bind: TLS needs a TCP address/,
  );
});

Deno.test("Dispatcher.start_tls() upgrades a client whose read is in flight", async () => {
  using _ = closing();
  // Deno's server side: plain text until STARTTLS, then TLS on the same
  // connection (Deno.startTls is client-only, so the test's server is ours
  // too: a LineChat that upgrades with a certificate).
  const [client, server] = await chatPair();
  server.onLine = async (line) => {
    if (line === "STARTTLS") {
      server.push(bytes("220 go ahead\r\n"));
      await server.start_tls({ cert: CERT, key: KEY });
    } else {
      server.push(bytes(`echo ${line}\r\n`));
    }
  };
  let upgraded = false;
  client.onLine = async (line) => {
    if (line !== "220 go ahead") return;
    // By now the channel has its next read in flight.
    await client.start_tls({ caCerts: [CA], serverName: "localhost" });
    upgraded = true;
    client.push(bytes("secret\r\n"));
  };
  client.push(bytes("STARTTLS\r\n"));
  await loopUntil(() => client.lines.includes("echo secret"), {
    what: "the echo over TLS",
  });
  assert.ok(upgraded);
  assert.deepEqual(client.errors, []);
  assert.deepEqual(server.errors, []);
  assert.deepEqual(server.lines, ["STARTTLS", "secret"]);
});

Deno.test("Dispatcher.start_tls() on the server: bytes sent before it go out in the clear, bytes after it encrypted", async () => {
  using _ = closing();
  const [accepted, raw] = await loopbackPair();
  const server = new Dispatcher(accepted);
  server.handle_read = () => {};
  server.writable = () => false;
  server.send(bytes("220 go ahead\r\n"));
  server.start_tls({ cert: CERT, key: KEY });
  server.send(bytes("after the upgrade"));
  const greeting = new Uint8Array(14);
  let got: string | null = null;
  (async () => {
    // Deno.startTls needs no read pending: read exactly the greeting.
    for (let n = 0; n < greeting.length;) {
      n += (await raw.read(greeting.subarray(n)))!;
    }
    const conn = await Deno.startTls(raw, {
      hostname: "localhost",
      caCerts: [CA],
    });
    const buf = new Uint8Array(100);
    const n = await conn.read(buf);
    got = text(buf.subarray(0, n!));
    conn.close();
  })();
  await loopUntil(() => got !== null, { what: "the client read over TLS" });
  assert.equal(text(greeting), "220 go ahead\r\n");
  assert.equal(got, "after the upgrade");
});

Deno.test("shutdown(SHUT_WR) after start_tls() ends TLS with close_notify, then the write side", async (t) => {
  for (const last of ["last words", ""]) {
    await t.step(last === "" ? "nothing sent" : "after a send", async () => {
      using _ = closing();
      const [accepted, raw] = await loopbackPair();
      const server = new Dispatcher(accepted);
      server.handle_read = () => {};
      server.writable = () => false;
      server.start_tls({ cert: CERT, key: KEY });
      if (last !== "") server.send(bytes(last));
      server.socket!.shutdown(SHUT_WR);
      const conn = await Deno.startTls(raw, {
        hostname: "localhost",
        caCerts: [CA],
      });
      let got: string | null = null;
      readAll(conn).then((data) => (got = text(data)));
      await loopUntil(() => got !== null, { what: "the client read to EOF" });
      assert.equal(got, last);
    });
  }
});

Deno.test("Dispatcher.start_tls() drops input received before it and not read yet", async () => {
  using _ = closing();
  const [accepted, raw] = await loopbackPair();
  const server = new Dispatcher(accepted);
  let received = "";
  server.writable = () => false;
  server.handle_read = () => {
    if (received === "") {
      // Read only the command: what was pipelined behind it stays unread.
      received = text(server.recv("STARTTLS\r\n".length));
      server.send(bytes("220 go\r\n"));
      server.start_tls({ cert: CERT, key: KEY });
    } else {
      received += text(server.recv(100));
    }
  };
  // One write: the command and a line injected behind it, in the clear.
  await raw.write(bytes("STARTTLS\r\nINJECTED\r\n"));
  let done = false;
  (async () => {
    const reply = new Uint8Array(8);
    for (let n = 0; n < reply.length;) {
      n += (await raw.read(reply.subarray(n)))!;
    }
    const conn = await Deno.startTls(raw, {
      hostname: "localhost",
      caCerts: [CA],
    });
    await conn.write(bytes("secret"));
    done = true;
    await conn.read(new Uint8Array(1)).catch(() => null);
    conn.close();
  })();
  await loopUntil(() => done && received.length > 10, {
    what: "the server read over TLS",
  });
  assert.equal(received, "STARTTLS\r\nsecret");
});

Deno.test({
  name:
    "AsyncChat.start_tls() drops commands pipelined behind STARTTLS (Python's ssl client)",
  ignore: !HAS_PYTHON,
  fn: async () => {
    using _ = closing();
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    // One write carries STARTTLS and an injected command (CVE-2011-0411).
    const child = python(
      `import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
raw = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
raw.sendall(b"STARTTLS\\r\\nINJECTED\\r\\n")
f = raw.makefile("rb")
print(f.readline().decode().strip())
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(b"over tls\\r\\n")
print(s.makefile("rb").readline().decode().strip(), s.version())
s.close()`,
      [CA_PATH, String(listener.addr.port)],
    );
    const server = new LineChat(await listener.accept());
    server.onLine = (line) => {
      if (line === "STARTTLS") {
        server.push(bytes("220 go ahead\r\n"));
        return server.start_tls({ cert: CERT, key: KEY });
      }
      server.push(bytes(`echo ${line}\r\n`));
    };
    let output: Deno.CommandOutput | null = null;
    const exited = child.output().then((out) => (output = out));
    await loopUntil(() => output !== null || server.closed, {
      what: "python exited",
    });
    const out = await exited;
    assert.equal(text(out.stderr), "");
    assert.match(text(out.stdout), /^220 go ahead\necho over tls TLSv1\.3\n$/);
    assert.deepEqual(server.lines, ["STARTTLS", "over tls"]);
  },
});

Deno.test({
  name:
    "AsyncChat.start_tls() in handle_connect() sends the STARTTLS pushed before it in the clear (Python's ssl server)",
  ignore: !HAS_PYTHON,
  fn: async () => {
    using _ = closing();
    // The server reads the command's 10 bytes in the clear, replies nothing,
    // and upgrades.
    const child = python(
      `import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
conn.settimeout(10)
line = b""
while len(line) < 10:
    chunk = conn.recv(10 - len(line))
    if not chunk:
        break
    line += chunk
print(repr(line), flush=True)
s = ctx.wrap_socket(conn, server_side=True)
print(s.makefile("rb").readline().decode().strip(), s.version(), flush=True)
s.sendall(b"bye\\r\\n")
s.close()`,
      [CERT_PATH, KEY_PATH],
    );
    const stdout = child.stdout.pipeThrough(new TextDecoderStream());
    const lines = stdout.getReader();
    // Its first line is the port (a read may end inside it).
    let printed = "";
    while (!printed.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      printed += value;
    }
    const port = Number(printed.slice(0, printed.indexOf("\n")));
    printed = printed.slice(printed.indexOf("\n") + 1);
    // The rest of its output, and its errors, once it exits.
    const exited = (async () => {
      for (let r = await lines.read(); !r.done; r = await lines.read()) {
        printed += r.value;
      }
      const stderr = await new Response(child.stderr).text();
      await child.status;
      return stderr;
    })();
    let upgraded = false;
    class Client extends LineChat {
      override handle_connect(): void {
        // Python's asynchat: connected is still false here, so the command
        // waits in the producer fifo.
        this.push(bytes("STARTTLS\r\n"));
        this.start_tls({ caCerts: [CA], serverName: "localhost" }).then(
          () => (upgraded = true),
          () => {},
        );
        this.push(bytes("secret\r\n"));
      }
    }
    const client = new Client();
    client.create_socket();
    client.connect(["127.0.0.1", port]);
    await loopUntil(() => client.lines.length > 0 || client.closed, {
      what: "the client heard back",
    });
    assert.equal(await exited, "");
    assert.equal(printed, "b'STARTTLS\\r\\n'\nsecret TLSv1.3\n");
    assert.ok(upgraded);
    assert.deepEqual(client.lines, ["bye"]);
    assert.deepEqual(client.errors, []);
  },
});

/**
 * The raw client of a server that upgrades: reads exactly `count` bytes in
 * the clear (Deno.startTls needs no read pending), upgrades, then reads once
 * over TLS. `secret` is set once that read is done.
 */
function clearThenTls(
  raw: Deno.TcpConn,
  count: number,
): { plain: Uint8Array; secret: string | null } {
  const result = {
    plain: new Uint8Array(count),
    secret: null as string | null,
  };
  (async () => {
    for (let n = 0; n < count;) {
      n += (await raw.read(result.plain.subarray(n)))!;
    }
    const conn = await Deno.startTls(raw, {
      hostname: "localhost",
      caCerts: [CA],
    });
    const buf = new Uint8Array(100);
    const n = await conn.read(buf);
    result.secret = text(buf.subarray(0, n!));
    conn.close();
  })();
  return result;
}

/**
 * Upgrades `server` while its outbox is full (its peer, `raw`, reads nothing
 * yet): `send` hands it 400 KiB, so that the rest of what the outbox's mark
 * refuses waits in the server's own queue (`queued` checks it), and
 * "220 go\r\n"; then start_tls(), then "after the upgrade\r\n" (and
 * `after()`). The peer must read the first two in the clear and the last
 * over TLS.
 */
async function upgradeBehindFullOutbox(
  server: Dispatcher,
  raw: Deno.TcpConn,
  send: (data: Uint8Array) => void,
  queued: () => boolean,
  after: () => void = () => {},
): Promise<void> {
  const filler = bytes(("x".repeat(1022) + "\r\n").repeat(400));
  send(filler);
  send(bytes("220 go\r\n"));
  assert.ok(queued());
  let upgraded = false;
  server.start_tls({ cert: CERT, key: KEY }).then(() => (upgraded = true));
  send(bytes("after the upgrade\r\n"));
  after();
  const client = clearThenTls(raw, filler.length + "220 go\r\n".length);
  await loopUntil(() => client.secret !== null && upgraded, {
    what: "the client read over TLS",
  });
  assert.deepEqual(client.plain.subarray(0, filler.length), filler);
  assert.equal(text(client.plain.subarray(filler.length)), "220 go\r\n");
  assert.equal(client.secret, "after the upgrade\r\n");
}

Deno.test("AsyncChat.start_tls() on a server whose outbox is full: what was pushed before goes out in the clear, what after encrypted", async () => {
  using _ = closing();
  const [accepted, raw] = await loopbackPair();
  const server = new LineChat(accepted);
  await upgradeBehindFullOutbox(
    server,
    raw,
    (data) => server.push(data),
    () => server.producer_fifo.length > 0,
  );
  assert.deepEqual(server.errors, []);
});

Deno.test("DispatcherWithSend.start_tls() on a server whose outbox is full: what was sent before goes out in the clear, what after encrypted", async (t) => {
  for (const join of [false, true]) {
    await t.step(
      join ? "out_buffer read after the call" : "out_buffer untouched",
      async () => {
        using _ = closing();
        const [accepted, raw] = await loopbackPair();
        Echo.errors = [];
        const server = new Echo(accepted);
        await upgradeBehindFullOutbox(
          server,
          raw,
          (data) => server.send(data),
          // Connected: writable while bytes wait in out_buffer.
          () => server.writable(),
          // Reading it joins the bytes queued before and after the call
          // into one chunk.
          () => join && server.out_buffer,
        );
        assert.deepEqual(Echo.errors, []);
      },
    );
  }
});

Deno.test("AsyncChat.start_tls() waits for the producers pushed before it, async ones included, to go out in the clear", async () => {
  using _ = closing();
  const [accepted, raw] = await loopbackPair();
  const server = new LineChat(accepted);
  server.push_with_producer(new SimpleProducer(bytes("220 "), 2));
  // Its chunk arrives after start_tls() returned.
  server.push_with_producer((async function* () {
    yield bytes("go\r\n");
  })());
  let upgraded = false;
  server.start_tls({ cert: CERT, key: KEY }).then(() => (upgraded = true));
  server.push_with_producer(new SimpleProducer(bytes("after the upgrade\r\n")));
  const client = clearThenTls(raw, "220 go\r\n".length);
  await loopUntil(() => client.secret !== null && upgraded, {
    what: "the client read over TLS",
  });
  assert.equal(text(client.plain), "220 go\r\n");
  assert.equal(client.secret, "after the upgrade\r\n");
  assert.deepEqual(server.errors, []);
});

Deno.test("Dispatcher.start_tls() reports an untrusted certificate through handle_error()", async () => {
  using rejections = watchRejections();
  using _ = closing();
  const [client, server] = await chatPair();
  let serverUpgrade: Promise<void> | null = null;
  server.onLine = () => {
    server.push(bytes("220 go ahead\r\n"));
    serverUpgrade = server.start_tls({ cert: CERT, key: KEY });
  };
  let rejected: unknown = null;
  // Upgrades on the server's 220, as STARTTLS wants: the ClientHello must
  // not reach the server before it has read STARTTLS and upgraded.
  client.onLine = () => {
    // No caCerts: the test CA is not among the system's roots.
    client.start_tls({ serverName: "localhost" }).catch((
      error,
    ) => (rejected = error));
  };
  client.push(bytes("STARTTLS\r\n"));
  const fileno = client.fileno()!;
  await loopUntil(
    () => rejected !== null && server.closed,
    { what: "the handshake failed on both sides" },
  );
  assert.ok(rejected instanceof Deno.errors.InvalidData);
  assert.match(
    rejected.message,
    /^Cannot complete TLS handshake with 127\.0\.0\.1:\d+: unable to verify the first certificate$/,
  );
  assert.equal(
    (rejected as { code?: unknown }).code,
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  );
  assert.deepEqual(client.errors, [rejected]);
  assert.ok(!socket_map.has(fileno), "the failed channel is closed");
  // The server sees the client leave mid-handshake: a disconnect.
  assert.deepEqual(server.errors, []);
  await assert.rejects(serverUpgrade!, Deno.errors.ConnectionReset);
  assert.deepEqual(rejections.reasons, []);
});

Deno.test("Dispatcher.start_tls() to an IP address without serverName fails through handle_error()", async () => {
  using _ = closing();
  const [client] = await chatPair();
  let rejected: unknown = null;
  client.handle_connect = () => {
    client.start_tls().catch((error) => (rejected = error));
  };
  const fileno = client.fileno()!;
  await loopUntil(() => rejected !== null, { what: "the upgrade failed" });
  assert.ok(rejected instanceof Error);
  assert.match(rejected.message, /must not be an IP address/);
  assert.deepEqual(client.errors, [rejected]);
  assert.ok(!socket_map.has(fileno), "the failed channel is closed");
});

Deno.test("Dispatcher.start_tls() needs a connection", () => {
  using _ = closing();
  const idle = new Dispatcher();
  assert.throws(() => idle.start_tls(), /Cannot start TLS: the dispatcher/);
  idle.create_socket();
  assert.throws(() => idle.start_tls(), /Cannot start TLS: the dispatcher/);
});
