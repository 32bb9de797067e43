// Failing hooks: every hook, sync and async, throwing and rejecting, beside a
// healthy channel that keeps being served. No failure may escape as an
// unhandled rejection, hang the loop, or reach another channel.

import assert from "node:assert/strict";
import {
  AsyncChat,
  Dispatcher,
  type HookResult,
  loop,
  socket_map,
} from "../mod.ts";
import {
  bytes,
  closing,
  EchoHandler,
  loopbackPair,
  loopUntil,
  text,
  watchRejections,
  writeAll,
} from "./_helpers.ts";

type Mode = "throws" | "rejects";
const MODES: readonly Mode[] = ["throws", "rejects"];

// A hook body that fails the way `mode` says, with `message`.
function failing(mode: Mode, message: string): () => HookResult {
  if (mode === "throws") {
    return () => {
      throw new Error(message);
    };
  }
  return async () => {
    await Promise.resolve();
    throw new Error(message);
  };
}

/** A raw client whose server side is an {@linkcode EchoHandler} in socket_map. */
async function healthyClient(): Promise<Deno.Conn> {
  const [accepted, client] = await loopbackPair();
  new EchoHandler(accepted);
  return client;
}

/** Checks that the healthy channel still echoes, driving the loop. */
async function assertServed(client: Deno.Conn, what: string): Promise<void> {
  const message = `ping after ${what}`;
  await writeAll(client, bytes(message));
  let got = "";
  let done = false;
  const buf = new Uint8Array(256);
  const reading = (async () => {
    while (got.length < message.length) {
      const n = await client.read(buf);
      if (n === null) break;
      got += text(buf.subarray(0, n));
    }
    done = true;
  })();
  await loopUntil(() => done, { what: "the healthy channel echoes" });
  await reading;
  assert.equal(got, message);
}

// log_info() recorded, not printed.
function quiet<T extends Dispatcher>(obj: T): T & { logged: string[] } {
  const logged: string[] = [];
  obj.log_info = (message: string, type = "info") => {
    logged.push(`${type}: ${message}`);
  };
  return Object.assign(obj, { logged });
}

interface Case {
  hook: string;
  modes: readonly Mode[];
  // Makes a channel whose `hook` fails as `mode` says, and starts what
  // triggers it. Returns the channel.
  start(
    mode: Mode,
    message: string,
    listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
  ): Promise<Dispatcher & { logged: string[] }>;
}

// A client of `listener` with `hook` replaced, connected; the peer is
// returned too, so the case can make it write or close.
async function connected(
  listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
  setup: (client: Dispatcher) => void,
  obj: Dispatcher = new Dispatcher(),
): Promise<[Dispatcher & { logged: string[] }, Deno.Conn]> {
  const client = quiet(obj);
  client.writable = () => !client.connected;
  client.handle_connect = () => {};
  client.create_socket();
  client.connect(["127.0.0.1", listener.addr.port]);
  const accepted = listener.accept();
  await loopUntil(() => client.connected, { what: "the client connected" });
  setup(client);
  return [client, await accepted];
}

const peers: Deno.Conn[] = [];

const CASES: readonly Case[] = [
  {
    hook: "handle_connect()",
    modes: MODES,
    start(mode, message, listener) {
      const client = quiet(new Dispatcher());
      client.handle_connect = failing(mode, message);
      client.create_socket();
      client.connect(["127.0.0.1", listener.addr.port]);
      listener.accept().then((conn) => peers.push(conn));
      return Promise.resolve(client);
    },
  },
  {
    hook: "handle_read()",
    modes: MODES,
    async start(mode, message, listener) {
      const [client, peer] = await connected(listener, (c) => {
        c.handle_read = failing(mode, message);
      });
      peers.push(peer);
      await writeAll(peer, bytes("data"));
      return client;
    },
  },
  {
    hook: "handle_write()",
    modes: MODES,
    async start(mode, message, listener) {
      const [client, peer] = await connected(listener, (c) => {
        c.writable = () => true;
        c.handle_write = failing(mode, message);
      });
      peers.push(peer);
      return client;
    },
  },
  {
    // recv() at EOF calls it; the default handle_error() calls it again.
    hook: "handle_close() from recv()",
    modes: MODES,
    async start(mode, message, listener) {
      const [client, peer] = await connected(listener, (c) => {
        c.handle_read = () => {
          c.recv(64);
        };
        c.handle_close = failing(mode, message);
      });
      peer.close();
      return client;
    },
  },
  {
    hook: "found_terminator()",
    modes: MODES,
    async start(mode, message, listener) {
      const [client, peer] = await connected(listener, (c) => {
        const chat = c as AsyncChat;
        chat.set_terminator("\n");
        chat.collect_incoming_data = () => {};
        chat.found_terminator = failing(mode, message);
      }, new AsyncChat());
      peers.push(peer);
      await writeAll(peer, bytes("a line\n"));
      return client;
    },
  },
  {
    hook: "collect_incoming_data()",
    modes: ["throws"],
    async start(_mode, message, listener) {
      const [client, peer] = await connected(listener, (c) => {
        (c as AsyncChat).set_terminator("\n");
        (c as AsyncChat).collect_incoming_data = () => {
          throw new Error(message);
        };
      }, new AsyncChat());
      peers.push(peer);
      await writeAll(peer, bytes("a line\n"));
      return client;
    },
  },
];

Deno.test("a failing hook closes its own channel and the loop keeps serving the others", async (t) => {
  using rejections = watchRejections();
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using healthy = await healthyClient();
  try {
    for (const { hook, modes, start } of CASES) {
      for (const mode of modes) {
        const what = `${hook} ${mode}`;
        await t.step(what, async () => {
          const message = `${hook} failed (${mode})`;
          const faulty = await start(mode, message, listener);
          await loopUntil(() => faulty.fileno() === null, {
            what: `${what} closed its channel`,
          });
          assert.ok(
            faulty.logged.some((line) =>
              line.startsWith("error: uncaptured exception") &&
              line.includes(message)
            ),
            `handle_error() logged ${message}: ${faulty.logged.join("\n")}`,
          );
          await assertServed(healthy, what);
          assert.deepEqual(rejections.reasons, []);
        });
      }
    }
  } finally {
    for (const peer of peers.splice(0)) peer.close();
  }
  assert.equal(socket_map.size, 1);
});

Deno.test("send() on a closed channel observes an async handle_close() that rejects", async () => {
  using rejections = watchRejections();
  using _cleanup = closing();
  using healthy = await healthyClient();
  const [accepted, peer] = await loopbackPair();
  using _peer = peer;
  const channel = quiet(new Dispatcher(accepted));
  let closes = 0;
  channel.close();
  channel.handle_close = async () => {
    closes++;
    await Promise.resolve();
    throw new Error("async close failed");
  };
  assert.equal(channel.send(bytes("late")), 0);
  await assertServed(healthy, "send() on a closed channel");
  assert.equal(closes, 2, "send() and the default handle_error() called it");
  assert.ok(channel.logged.some((line) => line.includes("async close failed")));
  assert.deepEqual(rejections.reasons, []);
});

Deno.test("a handle_error() that throws or rejects makes loop() reject with its error, never handle_error() again", async (t) => {
  for (const hookMode of MODES) {
    for (const errorMode of MODES) {
      await t.step(
        `hook ${hookMode}, handle_error() ${errorMode}`,
        async () => {
          using rejections = watchRejections();
          using _cleanup = closing();
          using healthy = await healthyClient();
          using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
          // The hook fails once: a second failure still in flight when loop()
          // rejects would end the next loop() too.
          let failed = false;
          const fail = failing(hookMode, "hook failed");
          const [client, peer] = await connected(listener, (c) => {
            c.writable = () => !failed;
            c.handle_write = () => {
              failed = true;
              return fail();
            };
          });
          using _peer = peer;
          const seen: string[] = [];
          client.handle_error = (error: unknown): HookResult => {
            seen.push((error as Error).message);
            // Bounded, so a handle_error() fed its own error again and again
            // (the old behaviour) ends the test instead of hanging it.
            if (seen.length > 4) return;
            return failing(errorMode, "handle_error failed")();
          };
          await assert.rejects(
            loop({ timeout: 0.05, count: 50 }),
            /handle_error failed/,
          );
          // Called once, never with its own error.
          assert.deepEqual(seen, ["hook failed"]);
          // The loop can be run again: the other channels are still served.
          client.close();
          await assertServed(healthy, "loop() rejected");
          assert.deepEqual(rejections.reasons, []);
        },
      );
    }
  }
});

// Thrown values that cannot become a string, or whose checks throw.
function unprintable(): [string, () => unknown][] {
  return [
    ["Object.create(null)", () => Object.create(null)],
    ["a toString() that throws", () => ({
      toString(): string {
        throw new Error("toString failed");
      },
    })],
    [
      "an Error whose message getter throws",
      () =>
        Object.defineProperty(new Error("hidden"), "message", {
          get(): string {
            throw new Error("message getter failed");
          },
        }),
    ],
    ["a revoked Proxy", () => {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    }],
  ];
}

Deno.test("a hook that throws or rejects a value that cannot be formatted closes its channel and the loop keeps serving the others", async (t) => {
  using rejections = watchRejections();
  using _cleanup = closing();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using healthy = await healthyClient();
  for (const [name, make] of unprintable()) {
    for (const mode of MODES) {
      await t.step(`${name}, ${mode}`, async () => {
        let failed = false;
        const [client, peer] = await connected(listener, (c) => {
          c.writable = () => !failed;
          c.handle_write = () => {
            failed = true;
            if (mode === "throws") throw make();
            return Promise.resolve().then(() => {
              throw make();
            });
          };
        });
        using _peer = peer;
        await loopUntil(() => client.fileno() === null, {
          what: `the channel that threw ${name} closed`,
          limit: 5,
        });
        assert.ok(
          client.logged.some((line) =>
            line.startsWith("error: uncaptured exception") &&
            line.includes("<exception str() failed>")
          ),
          client.logged.join("\n"),
        );
        await assertServed(healthy, name);
        assert.deepEqual(rejections.reasons, []);
      });
    }
  }
  assert.equal(socket_map.size, 1);
});

Deno.test("a handle_error() that rejects with undefined makes loop() reject with undefined", async (t) => {
  for (const errorMode of MODES) {
    await t.step(`handle_error() ${errorMode}`, async () => {
      using rejections = watchRejections();
      using _cleanup = closing();
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      let failed = false;
      const [client, peer] = await connected(listener, (c) => {
        c.writable = () => !failed;
        c.handle_write = () => {
          failed = true;
          throw new Error("hook failed");
        };
      });
      using _peer = peer;
      client.handle_error = (): HookResult => {
        if (errorMode === "throws") throw undefined;
        return Promise.reject(undefined);
      };
      let settled = "no";
      await loop({ timeout: 0.05, count: 100 }).then(
        () => settled = "resolved",
        (error) => settled = `rejected with ${error}`,
      );
      assert.equal(settled, "rejected with undefined");
      assert.deepEqual(rejections.reasons, []);
    });
  }
});
