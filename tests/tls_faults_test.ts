// TLS faults against real peers: handshakes that fail on a TLS listener,
// the end of a STARTTLS stream after a large transfer, and close_notify on
// close() after either kind of TLS (issue 15 items 1 to 3, issue 16 item 9).

import assert from "node:assert/strict";
import { Dispatcher, loop, socket_map } from "../mod.ts";
import {
  bytes,
  CA,
  CA_PATH,
  CERT,
  closing,
  HAS_PYTHON,
  KEY,
  loopbackPair,
  loopUntil,
  portOf,
  python,
  text,
  writeAll,
} from "./_helpers.ts";

/** What a handler saw: its errors and how often `handle_close()` ran. */
interface Seen {
  errors: unknown[];
  closes: number;
  reads: number;
}

/**
 * A TLS listener whose connections record what they see. Their
 * `handle_error()` keeps the channel open, or rethrows (as CPython's
 * test_ssl `AsyncoreEchoServer` does): neither may make an error come back.
 */
class TlsServer extends Dispatcher {
  seen: Seen[] = [];
  constructor(readonly onError: "keep" | "rethrow") {
    super();
    this.create_socket();
    this.bind(["127.0.0.1", 0], { tls: { cert: CERT, key: KEY } });
    this.listen(5);
  }
  override handle_accepted(sock: Deno.Conn): void {
    const seen: Seen = { errors: [], closes: 0, reads: 0 };
    this.seen.push(seen);
    const handler = new Dispatcher(sock);
    handler.writable = () => false;
    handler.handle_read = () => {
      seen.reads++;
      const data = handler.recv(1024);
      if (data.length > 0) handler.send(data);
    };
    handler.handle_close = () => {
      seen.closes++;
      handler.close();
    };
    handler.handle_error = (error) => {
      seen.errors.push(error);
      if (this.onError === "rethrow") throw error;
    };
  }
}

/**
 * A listener, TLS from the start (`bind({tls})`) or plain for STARTTLS
 * (`start_tls()`), and a Python peer running `script` against it with the
 * CA, the port and "implicit" or "starttls" as its arguments.
 */
function pythonPeer(kind: string, script: string): {
  listener: Dispatcher;
  child: Deno.ChildProcess;
  implicit: boolean;
} {
  const implicit = kind === "bind({tls})";
  const listener = new Dispatcher();
  listener.create_socket();
  listener.bind(
    ["127.0.0.1", 0],
    implicit ? { tls: { cert: CERT, key: KEY } } : {},
  );
  listener.listen(1);
  const child = python(script, [
    CA_PATH,
    String(portOf(listener.getsockname())),
    implicit ? "implicit" : "starttls",
  ]);
  return { listener, child, implicit };
}

const HANDSHAKE_FAILURE =
  /^Cannot complete TLS handshake with 127\.0\.0\.1:\d+: /;

Deno.test("a failed TLS handshake on a TLS listener reaches handle_error() once, then its channel closes", async (t) => {
  const clients: [string, Uint8Array, RegExp | null][] = [
    ["plain text", bytes("GET / HTTP/1.0\r\n\r\n"), HANDSHAKE_FAILURE],
    ["garbage", new Uint8Array(64).fill(0xff), HANDSHAKE_FAILURE],
    // A ClientHello's header, then the client leaves: a disconnect.
    [
      "a client that leaves mid-handshake",
      new Uint8Array([22, 3, 1, 0, 200, 1]),
      null,
    ],
  ];
  for (const [name, sent, failure] of clients) {
    await t.step(name, async () => {
      using _ = closing();
      const server = new TlsServer("keep");
      const client = await Deno.connect({
        hostname: "127.0.0.1",
        port: portOf(server.getsockname()),
      });
      await writeAll(client, sent);
      if (failure === null) client.close();
      await loopUntil(() => socket_map.size === 1 && server.seen.length === 1, {
        what: "the failed connection closed",
      });
      // Passes after the failure bring nothing new.
      await loop({ timeout: 0.01, count: 5 });
      const [seen] = server.seen;
      if (failure === null) {
        assert.deepEqual(seen!.errors, []);
        assert.equal(seen!.closes, 1);
      } else {
        assert.equal(seen!.reads, 0);
        assert.equal(seen!.errors.length, 1);
        assert.match(String((seen!.errors[0] as Error).message), failure);
        assert.ok(seen!.errors[0] instanceof Deno.errors.InvalidData);
        // handle_error() kept it open: the library closed it afterwards.
        assert.equal(seen!.closes, 0);
        client.close();
      }
    });
  }
});

Deno.test("a handle_error() that rethrows a handshake failure ends that loop() only: the next one serves others", async () => {
  using _ = closing();
  const server = new TlsServer("rethrow");
  const port = portOf(server.getsockname());
  using plain = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(plain, bytes("HELO plain text\r\n"));
  let thrown: unknown = null;
  for (let passes = 0; thrown === null && passes < 200; passes++) {
    await loop({ timeout: 0.05, count: 1 }).catch((error) => (thrown = error));
  }
  assert.match(String((thrown as Error | null)?.message), HANDSHAKE_FAILURE);
  const good = await Deno.connectTls({
    hostname: "localhost",
    port,
    caCerts: [CA],
  });
  const reply = new Uint8Array(5);
  let got = 0;
  const sent = writeAll(good, bytes("hello")).then(async () => {
    while (got < reply.length) {
      got += (await good.read(reply.subarray(got))) ?? reply.length;
    }
  });
  await loopUntil(() => got === reply.length, { what: "the echo came back" });
  await sent;
  good.close();
  assert.equal(text(reply), "hello");
  assert.equal(server.seen[0]!.errors.length, 1);
  assert.deepEqual(server.seen[1]!.errors, []);
});

Deno.test("Dispatcher.connect() with tls calls handle_connect() after the handshake, and reports its failure once, naming the peer", async (t) => {
  for (const trusted of [true, false]) {
    await t.step(
      trusted ? "a trusted server" : "an untrusted server",
      async () => {
        using _ = closing();
        const server = new TlsServer("keep");
        const client = new Dispatcher();
        const errors: unknown[] = [];
        let connected = false;
        client.handle_connect = () => void (connected = true);
        client.handle_error = (error) => void errors.push(error);
        client.handle_read = () => {};
        client.create_socket();
        client.connect(["127.0.0.1", portOf(server.getsockname())], {
          tls: trusted ? { caCerts: [CA], serverName: "localhost" } : true,
        });
        await loopUntil(() => connected || !socket_map.has(client.fileno()!), {
          what: "the client connected or failed",
        });
        await loop({ timeout: 0.01, count: 5 });
        if (trusted) {
          // handle_connect() means TLS is up: the server saw no failure.
          assert.deepEqual(errors, []);
          assert.equal(server.seen.length, 1);
          assert.deepEqual(server.seen[0]!.errors, []);
        } else {
          assert.equal(connected, false);
          assert.equal(errors.length, 1);
          assert.match(String((errors[0] as Error).message), HANDSHAKE_FAILURE);
        }
      },
    );
  }
});

Deno.test("Dispatcher.start_tls() reports a failed handshake once, naming the peer, when a hook awaits it too", async () => {
  using _ = closing();
  const [accepted, raw] = await loopbackPair();
  const server = new Dispatcher(accepted);
  const errors: unknown[] = [];
  server.writable = () => false;
  server.handle_error = (error) => void errors.push(error);
  let upgrading = false;
  // An async hook that awaits the upgrade and lets its failure through.
  server.handle_read = async () => {
    server.recv(100);
    upgrading = true;
    server.handle_read = () => void server.recv(100);
    await server.start_tls({ cert: CERT, key: KEY });
  };
  const fileno = server.fileno()!;
  await writeAll(raw, bytes("STARTTLS\r\n"));
  await loopUntil(() => upgrading, { what: "the server upgraded" });
  await writeAll(raw, bytes("not a ClientHello\r\n"));
  await loopUntil(() => !socket_map.has(fileno), {
    what: "the failed channel closed",
  });
  await loop({ timeout: 0.01, count: 5 });
  raw.close();
  assert.equal(errors.length, 1);
  assert.match(String((errors[0] as Error).message), HANDSHAKE_FAILURE);
  assert.ok(errors[0] instanceof Deno.errors.InvalidData);
});

Deno.test({
  name:
    "a STARTTLS server sees the end of a 300 KiB upload: handle_close() runs after the peer's close_notify and FIN (Python's ssl client)",
  ignore: !HAS_PYTHON,
  fn: async () => {
    using _ = closing();
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const size = 300 * 1024;
    const child = python(
      `import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
raw = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
print(raw.makefile("rb").readline().decode().strip())
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(b"x" * int(sys.argv[3]))
s.settimeout(10)
plain = s.unwrap()  # close_notify, then the server's close_notify
plain.close()  # FIN
print("unwrapped")`,
      [CA_PATH, String(listener.addr.port), String(size)],
    );
    const server = new Dispatcher(await listener.accept());
    let received = 0;
    let closed = false;
    const errors: unknown[] = [];
    server.writable = () => false;
    server.handle_read = () => void (received += server.recv(65536).length);
    server.handle_close = () => {
      closed = true;
      server.close();
    };
    server.handle_error = (error) => void errors.push(error);
    server.send(bytes("220 go ahead\r\n"));
    server.start_tls({ cert: CERT, key: KEY });
    const exited = child.output();
    await loopUntil(() => closed, { what: "handle_close() ran" });
    const out = await exited;
    assert.equal(text(out.stderr), "");
    assert.equal(text(out.stdout), "220 go ahead\nunwrapped\n");
    assert.equal(received, size);
    assert.deepEqual(errors, []);
  },
});

Deno.test({
  name:
    "close() ends TLS with close_notify after bind({tls}) and after start_tls() alike (Python's ssl client)",
  ignore: !HAS_PYTHON,
  fn: async (t) => {
    // suppress_ragged_eofs=False: an end without close_notify raises.
    const script = `import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
raw = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
if sys.argv[3] == "starttls":
    print(raw.makefile("rb").readline().decode().strip())
s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
s.settimeout(10)
s.sendall(b"bye\\n")
data = b""
while True:
    chunk = s.recv(100)
    if not chunk:
        break
    data += chunk
print(data.decode(), "then close_notify")
s.unwrap().close()`;
    for (const kind of ["bind({tls})", "start_tls()"]) {
      await t.step(kind, async () => {
        using _ = closing();
        const { listener, child, implicit } = pythonPeer(kind, script);
        listener.handle_accepted = (sock) => {
          listener.close();
          const server = new Dispatcher(sock);
          server.writable = () => false;
          server.handle_read = () => {
            if (text(server.recv(100)) !== "bye\n") return;
            server.send(bytes("goodbye"));
            server.close();
          };
          if (!implicit) {
            server.send(bytes("220 go ahead\r\n"));
            server.start_tls({ cert: CERT, key: KEY });
          }
        };
        let output: Deno.CommandOutput | null = null;
        const exited = child.output().then((out) => (output = out));
        // Python exits once the server has closed (the map is empty then).
        await loopUntil(() => output !== null || socket_map.size === 0, {
          what: "the server closed",
        });
        const out = await exited;
        assert.equal(text(out.stderr), "");
        assert.equal(
          text(out.stdout),
          `${implicit ? "" : "220 go ahead\n"}goodbye then close_notify\n`,
        );
      });
    }
  },
});

Deno.test({
  name:
    "a peer's unwrap() (FTP's CCC) ends the connection: handle_close(), no error, and the peer reads nothing in the clear (Python's ssl client)",
  ignore: !HAS_PYTHON,
  fn: async (t) => {
    const script = `import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
raw = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
if sys.argv[3] == "starttls":
    raw.makefile("rb").readline()
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.settimeout(10)
s.sendall(b"CCC\\r\\n")
print(s.recv(100).decode().strip())
plain = s.unwrap()
plain.sendall(b"NOOP\\r\\n")
print(plain.recv(100))`;
    for (const kind of ["bind({tls})", "start_tls()"]) {
      await t.step(kind, async () => {
        using _ = closing();
        const { listener, child, implicit } = pythonPeer(kind, script);
        const seen: Seen = { errors: [], closes: 0, reads: 0 };
        listener.handle_accepted = (sock) => {
          listener.close();
          const server = new Dispatcher(sock);
          server.writable = () => false;
          server.handle_read = () => {
            const data = server.recv(100);
            if (data.length > 0) seen.reads++;
            if (text(data) === "CCC\r\n") server.send(bytes("200 CCC ok\r\n"));
          };
          server.handle_close = () => {
            seen.closes++;
            server.close();
          };
          server.handle_error = (error) => void seen.errors.push(error);
          if (!implicit) {
            server.send(bytes("220 go ahead\r\n"));
            server.start_tls({ cert: CERT, key: KEY });
          }
        };
        const exited = child.output();
        await loopUntil(() => seen.closes > 0, { what: "handle_close() ran" });
        const out = await exited;
        assert.equal(text(out.stderr), "");
        assert.equal(text(out.stdout), "200 CCC ok\nb''\n");
        assert.deepEqual(seen, { errors: [], closes: 1, reads: 1 });
      });
    }
  },
});
