// The SMTP example's limits on what one client can hold: a deadline for
// silence, per command line and per message (a client trickling bytes is cut
// however steadily they come), a bound on unsent replies (a client that
// pipelines and never reads stops being read), a recipient limit, and the
// checks of the options that set them. Real peers: Python sockets and
// smtplib, and raw Deno sockets.

import assert from "node:assert/strict";
import { close_all, socket_map } from "@asyncore/asyncore";
import { SMTPChannel, SMTPServer } from "../examples/smtpd/mod.ts";
import { HAS_PYTHON, loopUntil, tempDir } from "./_helpers.ts";
import {
  HAS_SMTPLIB,
  portOf,
  RawClient,
  Recorder,
  serving,
  smtplib,
  talkTo,
  withSmtpd,
} from "./_smtp_helpers.ts";

const decoder = new TextDecoder();

// Greets, optionally goes into DATA, then sends `unit` every 50 ms until a
// reply (or EOF) comes, at most `limit` times; prints what it saw as JSON.
const PYTHON_TRICKLE = `
import json, select, socket, sys
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")
def reply():
    line = f.readline()
    return line.decode().rstrip("\\r\\n") if line else None
reply()
if mode == "data":
    for command in [b"HELO x", b"MAIL FROM:<a@b>", b"RCPT TO:<c@d>", b"DATA"]:
        s.sendall(command + b"\\r\\n")
        reply()
    unit = b"a line of the message\\r\\n"
else:
    s.sendall(b"HELO ")
    unit = b"x"
sent = 0
while sent < 200:
    if select.select([s], [], [], 0.05)[0]:
        break
    s.sendall(unit)
    sent += 1
answer = reply()
print(json.dumps({"sent": sent, "reply": answer, "then": reply()}))
`;

async function trickle(
  port: number,
  mode: "command" | "data",
): Promise<{ sent: number; reply: string | null; then: string | null }> {
  const { success, stdout, stderr } = await new Deno.Command("python3", {
    args: ["-c", PYTHON_TRICKLE, String(port), mode],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(success, decoder.decode(stderr));
  return JSON.parse(decoder.decode(stdout));
}

Deno.test({
  name:
    "smtpd.ts --command-timeout/--data-timeout: a client trickling a byte or a line every 50 ms gets 421 and is closed",
  ignore: !HAS_PYTHON,
  async fn(t) {
    for (const mode of ["command", "data"] as const) {
      await t.step(
        `within a ${mode === "command" ? "command line" : "message"}`,
        async () => {
          // The idle timeout never fires: a byte comes every 50 ms.
          await withSmtpd([
            "--timeout",
            "30",
            "--command-timeout",
            "0.5",
            "--data-timeout",
            "0.5",
          ], async (port) => {
            const seen = await trickle(port, mode);
            assert.match(seen.reply ?? "", /^421 \S+ Error: timeout exceeded$/);
            assert.equal(seen.then, null, "closed after the 421");
            assert.ok(seen.sent < 200, `cut after ${seen.sent} sends`);
          });
        },
      );
    }
  },
});

Deno.test({
  name:
    "a quick client is not cut by short deadlines: smtplib sends a message with commandTimeout and dataTimeout at 0.5 s",
  ignore: !HAS_SMTPLIB,
  async fn() {
    await using dir = await tempDir();
    const message = `${dir.path}/message.eml`;
    await Deno.writeTextFile(
      message,
      "Subject: hi\r\n\r\n" + "body\r\n".repeat(1000),
    );
    const server = new Recorder(["127.0.0.1", 0], {
      commandTimeout: 0.5,
      dataTimeout: 0.5,
    });
    const results = await serving(
      server,
      (port) =>
        smtplib(port, [["ehlo", "me"], [
          "sendmail",
          "a@b",
          ["c@d"],
          message,
          [],
        ]]),
    );
    assert.deepEqual(results.at(-1), ["ok", {}]);
    assert.equal(server.received.length, 1);
  },
});

Deno.test("the new options are checked: a bad deadline, recipient limit or reply bound throws naming it", () => {
  const cases: [Record<string, unknown>, typeof Error, RegExp][] = [
    [
      { commandTimeout: 0 },
      RangeError,
      /commandTimeout "0" is not a positive number/,
    ],
    [
      { dataTimeout: "1" },
      TypeError,
      /dataTimeout must be a number, got string/,
    ],
    [
      { maxRecipients: 0 },
      RangeError,
      /maxRecipients "0" is not an integer from 1/,
    ],
    [
      { maxReplyBuffer: -1 },
      RangeError,
      /maxReplyBuffer "-1" is not an integer from 0/,
    ],
  ];
  for (const [options, Class, message] of cases) {
    assert.throws(
      () => new SMTPServer(["127.0.0.1", 0], options),
      (error: unknown) => {
        assert.ok(error instanceof Class);
        assert.match(error.message, /^Cannot create SMTPServer: /);
        assert.match(error.message, message);
        return true;
      },
    );
  }
  assert.equal(socket_map.size, 0);
});

Deno.test("RCPT past maxRecipients gets 452; the message goes to the recipients accepted", async () => {
  const server = new Recorder(["127.0.0.1", 0], { maxRecipients: 100 });
  await talkTo(server, async (client) => {
    await client.commands("HELO x", "MAIL FROM:<a@b>");
    // Pipelined, as a bulk sender would.
    let batch = "";
    for (let i = 0; i < 102; i++) batch += `RCPT TO:<r${i}@d>\r\n`;
    await client.write(batch);
    for (let i = 0; i < 100; i++) await client.expectReplies("250 OK");
    await client.expectReplies(
      "452 Error: too many recipients",
      "452 Error: too many recipients",
    );
    await client.commands("DATA");
    await client.write("hello\r\n.\r\n");
    await client.expectReplies("250 OK");
  });
  assert.equal(server.received.length, 1);
  assert.deepEqual(
    server.received[0]!.rcpttos,
    Array.from({ length: 100 }, (_, i) => `r${i}@d`),
  );
});

Deno.test({
  name:
    "smtpd.ts --max-recipients: smtplib's sendmail to 150 recipients has the 50 past the limit refused with 452",
  ignore: !HAS_SMTPLIB,
  async fn() {
    await using dir = await tempDir();
    const message = `${dir.path}/message.eml`;
    await Deno.writeTextFile(message, "Subject: many\r\n\r\nhello\r\n");
    const to = Array.from({ length: 150 }, (_, i) => `r${i}@example.com`);
    await withSmtpd(
      ["--max-recipients", "100"],
      async (port) => {
        const [result] = await smtplib(port, [[
          "sendmail",
          "a@b",
          to,
          message,
          [],
        ]]);
        const refused = Object.fromEntries(
          to.slice(100).map((
            rcpt,
          ) => [rcpt, [452, "Error: too many recipients"]]),
        );
        assert.deepEqual(result, ["ok", refused]);
      },
    );
  },
});

// Pipelines NOOPs from a socket with a small receive buffer and never reads
// a reply; runs until killed.
const PYTHON_NEVER_READS = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
chunk = b"NOOP\\r\\n" * 10000
for _ in range(1000):
    s.sendall(chunk)
`;

Deno.test({
  name:
    "a client that pipelines NOOPs and never reads stops being read past maxReplyBuffer; others are still served",
  ignore: !HAS_PYTHON,
  async fn() {
    const LIMIT = 4096;
    // What one read of NOOPs can add past the bound: 64 KiB of input, 8
    // reply bytes per 6 input bytes; twice that, for margin.
    const SLACK = 2 * Math.ceil(65536 / 6) * 8;
    const server = new Recorder(["127.0.0.1", 0], { maxReplyBuffer: LIMIT });
    const peer = new Deno.Command("python3", {
      args: ["-c", PYTHON_NEVER_READS, String(portOf(server))],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      let channel: SMTPChannel | undefined;
      let most = 0;
      let paused = 0;
      // Paused for 20 passes in a row: the peer's writes wait in the kernel.
      await loopUntil(() => {
        channel ??= [...socket_map.values()].find((d) =>
          d instanceof SMTPChannel
        ) as SMTPChannel | undefined;
        if (channel === undefined) return false;
        most = Math.max(most, channel.bufferedAmount);
        paused = channel.readable() ? 0 : paused + 1;
        return paused >= 20 || most > 100 * (LIMIT + SLACK);
      }, { limit: 30, what: "the channel stops reading" });
      assert.ok(
        most <= LIMIT + SLACK,
        `${most} bytes of replies queued, over ${LIMIT} + ${SLACK}`,
      );
      // The server still answers everyone else.
      await serving(
        server,
        (port) =>
          RawClient.session(port, async (client) => {
            assert.deepEqual(await client.command("NOOP"), ["250 OK"]);
          }),
      );
    } finally {
      peer.kill("SIGKILL");
      await peer.status;
    }
  },
});

Deno.test("SMTPServer rejects options that cannot work", () => {
  assert.throws(
    () =>
      new Recorder(["127.0.0.1", 0], {
        decode_data: true,
        enable_SMTPUTF8: true,
      }),
    TypeError,
  );
  assert.throws(
    () => new Recorder(["127.0.0.1", 0], { data_size_limit: -1 }),
    RangeError,
  );
  assert.throws(
    () => new Recorder(["127.0.0.1", 0], { data_size_limit: "1" as never }),
    TypeError,
  );
  assert.throws(
    () => new Recorder(["127.0.0.1", 0], { timeout: 0 }),
    RangeError,
  );
  assert.throws(
    () => new Recorder(["127.0.0.1", 0], { timeout: "300" as never }),
    TypeError,
  );
  close_all();
});

Deno.test("smtpd.ts answers 421 to a client silent for --timeout, in a command or in DATA", async (t) => {
  const silences: [string, string[]][] = [
    ["after the greeting", []],
    ["in DATA", [
      "EHLO quiet\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nhalf a line",
    ]],
  ];
  for (const [name, writes] of silences) {
    await t.step(name, async () => {
      await withSmtpd(["--timeout", "0.2"], async (port) => {
        const client = await RawClient.open(port);
        // Without the timeout the server would wait forever: the guard
        // closes the client after 10 s, failing the reads below.
        let expired = false;
        const guard = setTimeout(() => {
          expired = true;
          client.close();
        }, 10_000);
        try {
          assert.match((await client.reply())[0]!, /^220 /);
          for (const data of writes) await client.write(data);
          let reply = await client.reply();
          // Replies to the commands before the silence come first.
          while (!reply[0]!.startsWith("421")) reply = await client.reply();
          assert.match(reply[0]!, /^421 \S+ Error: timeout exceeded$/);
          assert.ok(await client.atEof());
        } finally {
          clearTimeout(guard);
          if (!expired) client.close();
        }
      });
    });
  }
});
