// End-to-end test of examples/chat_server.ts, run as a user runs it (a
// subprocess on a free port) with several raw TCP clients.

import assert from "node:assert/strict";

const SERVER = new URL("../examples/chat_server.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

/** A raw client that reads the chat line by line. */
class Client {
  readonly conn: Deno.Conn;
  readonly #lines: AsyncIterator<string>;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.#lines = readLines(conn);
  }

  static async connect(port: number): Promise<Client> {
    return new Client(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(line: string): Promise<void> {
    const data = encoder.encode(line);
    for (let offset = 0; offset < data.length;) {
      offset += await this.conn.write(data.subarray(offset));
    }
  }

  /** The next line, or `null` at EOF; fails instead of hanging forever. */
  async line(): Promise<string | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("no line within 10 s")),
        10_000,
      );
    });
    try {
      const next = await Promise.race([this.#lines.next(), limit]);
      return next.done ? null : next.value;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // closed by the server already
    }
  }
}

async function* readLines(conn: Deno.Conn): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(4096);
  let text = "";
  while (true) {
    let n: number | null;
    try {
      n = await conn.read(buf);
    } catch (error) {
      if (error instanceof Deno.errors.BadResource) return;
      throw error;
    }
    if (n === null) return;
    text += decoder.decode(buf.subarray(0, n), { stream: true });
    for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n")) {
      yield text.slice(0, end);
      text = text.slice(end + 1);
    }
  }
}

/** The chat server as a user runs it, on a free port. */
interface Server {
  port: number;
  /** Ends the server with SIGTERM and checks it exits cleanly. */
  stop(): Promise<void>;
}

async function startServer(flags: string[] = []): Promise<Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, "0", ...flags],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stop = async (): Promise<void> => {
    child.kill("SIGTERM");
    const status = await child.status;
    await stdout.cancel();
    const errors = await stderr;
    assert.equal(status.code, 0, errors);
    assert.equal(errors, "");
  };
  let seen = "";
  while (!seen.includes("\n")) {
    const { value, done } = await stdout.read();
    if (done) {
      await stop();
      throw new Error(`exited before listening: ${await stderr}`);
    }
    seen += value;
  }
  const match = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(seen);
  if (!match) await stop();
  assert.ok(match, `unexpected first output: ${seen}`);
  return { port: Number(match[1]), stop };
}

Deno.test("examples/chat_server.ts relays lines with names, /nick and /quit", async () => {
  const server = await startServer();
  const port = server.port;
  const clients: Client[] = [];
  try {
    const a = await Client.connect(port);
    clients.push(a);
    assert.equal(
      await a.line(),
      "welcome, guest1 (/nick NAME to rename, /quit to leave)",
    );
    const b = await Client.connect(port);
    clients.push(b);
    assert.match((await b.line())!, /^welcome, guest2 /);
    assert.equal(await a.line(), "* guest2 joined");
    const c = await Client.connect(port);
    clients.push(c);
    assert.match((await c.line())!, /^welcome, guest3 /);
    assert.equal(await a.line(), "* guest3 joined");
    assert.equal(await b.line(), "* guest3 joined");

    // A line (telnet-style \r\n, sent in two pieces) reaches the others.
    await a.send("hello, ");
    await a.send("room\r\n");
    assert.equal(await b.line(), "guest1: hello, room");
    assert.equal(await c.line(), "guest1: hello, room");

    await b.send("/nick bob\n");
    for (const client of [a, b, c]) {
      assert.equal(await client.line(), "* guest2 is now bob");
    }
    await b.send("hi all\n");
    assert.equal(await a.line(), "bob: hi all");
    assert.equal(await c.line(), "bob: hi all");

    await a.send("/nick bob\n");
    assert.equal(await a.line(), "* the name bob is taken");
    await a.send("/nick two words\n");
    assert.match((await a.line())!, /^\* usage: \/nick NAME/);
    await a.send("/dance\n");
    assert.match((await a.line())!, /^\* unknown command \/dance/);

    // /quit: a goodbye, then EOF; the others are told.
    await c.send("/quit\nignored after quit\n");
    assert.equal(await c.line(), "* bye, guest3");
    assert.equal(await c.line(), null);
    assert.equal(await a.line(), "* guest3 left");
    assert.equal(await b.line(), "* guest3 left");

    // A client that just disconnects leaves too; the sender never gets its
    // own lines back, so the next line b sees is a's.
    b.close();
    assert.equal(await a.line(), "* bob left");
    const d = await Client.connect(port);
    clients.push(d);
    assert.match((await d.line())!, /^welcome, guest4 /);
    assert.equal(await a.line(), "* guest4 joined");
    await a.send("still here\n");
    assert.equal(await d.line(), "guest1: still here");
    await a.send("x".repeat(5000) + "\n");
    assert.match((await a.line())!, /^\* line too long/);
    await d.send("/nick dee\n");
    assert.equal(await a.line(), "* guest4 is now dee");
    assert.equal(await d.line(), "* guest4 is now dee");
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
});

Deno.test("examples/chat_server.ts drops a member who does not read, and tells the room", async () => {
  const server = await startServer();
  const clients: Client[] = [];
  try {
    // guest1 never reads; guest2 reads everything; guest3 talks.
    const stalled = await Client.connect(server.port);
    clients.push(stalled);
    const reader = await Client.connect(server.port);
    clients.push(reader);
    assert.match((await reader.line())!, /^welcome, guest2 /);
    const talker = await Client.connect(server.port);
    clients.push(talker);
    assert.equal(await reader.line(), "* guest3 joined");
    // Batches of 256 KiB, each read by guest2 before the next is sent (so a
    // busy machine cannot make guest2 fall behind too), until guest1 is
    // dropped; 64 MiB is far more than the cap plus what the kernel buffers.
    const line = "x".repeat(4000);
    let dropped = false;
    for (let batch = 0; batch < 256 && !dropped; batch++) {
      await talker.send(`${line}\n`.repeat(64) + `batch ${batch}\n`);
      for (;;) {
        const got = await reader.line();
        assert.notEqual(got, null, "the reader was disconnected");
        if (got === `guest3: batch ${batch}`) break;
        if (/^\* guest1 was dropped \(over \d+ bytes unread\)$/.test(got!)) {
          dropped = true;
        } else {
          assert.equal(got, `guest3: ${line}`);
        }
      }
    }
    assert.ok(dropped, "no notice that guest1 was dropped");
    // The dropped client is disconnected: it reads what was already on its
    // way, then EOF.
    while (await stalled.line() !== null);
    // The room goes on.
    await talker.send("after\n");
    assert.equal(await reader.line(), "guest3: after");
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
});

Deno.test("examples/chat_server.ts drops a member who sends nothing for --idle-timeout, and tells the room", async () => {
  const server = await startServer(["--idle-timeout", "0.3"]);
  const clients: Client[] = [];
  try {
    // guest1 joins first, so its timeout comes first; guest2 reads.
    const idle = await Client.connect(server.port);
    clients.push(idle);
    assert.match((await idle.line())!, /^welcome, guest1 /);
    const reader = await Client.connect(server.port);
    clients.push(reader);
    assert.match((await reader.line())!, /^welcome, guest2 /);
    assert.equal(await reader.line(), "* guest1 was dropped (idle for 0.3 s)");
    // The idle client is disconnected.
    while (await idle.line() !== null);
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
});
