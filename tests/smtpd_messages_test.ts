// The SMTP example's messages: what process_message() gets and how its
// result or failure is answered, the size limit, 8-bit data,
// DebuggingServer's print-out, and the command-line server storing what
// Python's smtplib and swaks send, byte for byte.

import assert from "node:assert/strict";
import { socket_map } from "@asyncore/asyncore";
import {
  DebuggingServer,
  type ProcessMessageResult,
  SMTPChannel,
  SMTPServer,
} from "../examples/smtpd/mod.ts";
import { concat, tempDir } from "./_helpers.ts";
import {
  converse,
  HAS_SMTPLIB,
  HAS_SWAKS,
  header,
  RawClient,
  Recorder,
  serving,
  smtplib,
  stored,
  swaks,
  talkTo,
  TRANSACTION_REPLIES,
  withSmtpd,
} from "./_smtp_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// A session's commands up to DATA's go-ahead for one message.
const TO_DATA = ["HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"];

Deno.test("SMTPChannel delivers a message with its envelope, unstuffed and joined by LF", async () => {
  const server = new Recorder(["127.0.0.1", 0]);
  const replies = await serving(server, (port) =>
    converse(port, [
      "EHLO example",
      "MAIL FROM:<eggs@example> BODY=8BITMIME",
      "RCPT To:spam@example",
      "RCPT TO:<ham@example>",
      "DATA",
      "Subject: test\r\n\r\n..\r\n.leading\r\nmiddle . dot\r\ncaf\u00e9\r\n.",
      "QUIT",
    ]));
  assert.deepEqual(
    replies.slice(1).map((r) => r.at(-1)),
    TRANSACTION_REPLIES,
  );
  assert.equal(server.received.length, 1);
  const [message] = server.received;
  assert.equal(message!.mailfrom, "eggs@example");
  assert.deepEqual(message!.rcpttos, ["spam@example", "ham@example"]);
  assert.deepEqual(message!.options, {
    mail_options: ["BODY=8BITMIME"],
    rcpt_options: [],
  });
  assert.deepEqual((message!.peer as [string, number])[0], "127.0.0.1");
  assert.deepEqual(
    message!.data,
    encoder.encode("Subject: test\n\n.\nleading\nmiddle . dot\ncaf\u00e9"),
  );
});

Deno.test("SMTPChannel hands a string to process_message() with decode_data", async () => {
  const server = new Recorder(["127.0.0.1", 0], { decode_data: true });
  await serving(server, (port) =>
    converse(port, [
      "HELO example",
      "MAIL From:eggs@example",
      "RCPT To:spam@example",
      "DATA",
      "utf8 enriched text: \u017c\u017a\u0107\r\nand some plain ascii\r\n.",
    ]));
  assert.equal(
    server.received[0]!.data,
    "utf8 enriched text: \u017c\u017a\u0107\nand some plain ascii",
  );
  assert.deepEqual(server.received[0]!.options, {});
});

Deno.test("SMTPChannel sends the reply process_message() returns", async () => {
  const server = new Recorder(["127.0.0.1", 0]);
  server.respond = () => "250 Okish";
  const replies = await serving(
    server,
    (port) =>
      converse(port, [
        "HELO x",
        "MAIL FROM:<a@b>",
        "RCPT TO:<c@d>",
        "DATA",
        "return status\r\n.",
      ]),
  );
  assert.deepEqual(replies.at(-1), ["250 Okish"]);
});

Deno.test("SMTPChannel counts the data size limit as Python does", async (t) => {
  // 32 bytes: "data" + CRLF + 26 bytes; the final CRLF.CRLF does not count.
  const exact = `data\r\n${"x".repeat(26)}`;
  for (
    const [what, body, reply] of [
      ["a message of exactly the limit", exact, "250 OK"],
      ["a message one byte over", `${exact}y`, "552 Error: Too much mail data"],
      [
        "a single long line",
        "This message is longer than 32 bytes",
        "552 Error: Too much mail data",
      ],
    ] as const
  ) {
    await t.step(what, async () => {
      const server = new Recorder(["127.0.0.1", 0], { data_size_limit: 32 });
      const replies = await serving(
        server,
        (port) =>
          converse(port, [
            "HELO x",
            "MAIL FROM:<a@b>",
            "RCPT TO:<c@d>",
            "DATA",
            `${body}\r\n.`,
          ]),
      );
      assert.deepEqual(replies.at(-1), [reply]);
      assert.equal(server.received.length, reply === "250 OK" ? 1 : 0);
    });
  }
});

Deno.test("SMTPChannel keeps 8-bit data byte for byte", async () => {
  const server = new Recorder(["127.0.0.1", 0]);
  const body = new Uint8Array([
    0x41,
    0xc5,
    0xbc,
    0xff,
    0x80,
    0x0a,
    0x42,
    0x0d,
    0x43,
  ]);
  await talkTo(server, async (client) => {
    await client.commands(
      "EHLO x",
      "MAIL FROM:<a@b> BODY=8BITMIME",
      "RCPT TO:<c@d>",
      "DATA",
    );
    await client.write(concat([body, encoder.encode("\r\n.\r\n")]));
    assert.deepEqual(await client.reply(), ["250 OK"]);
  });
  // A bare LF or CR inside a line is data, as in Python.
  assert.deepEqual(server.received[0]!.data, body);
});

Deno.test("SMTPChannel waits for an async process_message() before reading on", async () => {
  const server = new Recorder(["127.0.0.1", 0]);
  const stored = Promise.withResolvers<string>();
  const started = Promise.withResolvers<void>();
  server.respond = () => {
    started.resolve();
    return stored.promise;
  };
  await talkTo(server, async (client) => {
    await client.commands(...TO_DATA);
    // The end of the message and the next command arrive together.
    await client.write("body\r\n.\r\nMAIL FROM:<e@f>\r\n");
    await started.promise;
    const [channel] = [...socket_map.values()].filter((d) =>
      d instanceof SMTPChannel
    ) as SMTPChannel[];
    // The transaction stands until process_message() is done, as in Python.
    assert.equal(channel!.mailfrom, "a@b");
    stored.resolve("250 Stored later");
    assert.deepEqual(await client.reply(), ["250 Stored later"]);
    assert.deepEqual(await client.reply(), ["250 OK"]);
    assert.equal(channel!.mailfrom, "e@f");
    assert.deepEqual(await client.command("QUIT"), ["221 Bye"]);
  });
});

class Failing extends SMTPServer {
  failure: "throw" | "reject" = "throw";
  override process_message(): ProcessMessageResult {
    if (this.failure === "throw") throw new Error("no storage");
    return Promise.reject(new Error("no storage"));
  }
}

class WatchedChannel extends SMTPChannel {
  static errors: unknown[] = [];
  override handle_error(error: unknown): void {
    WatchedChannel.errors.push(error);
    this.close();
  }
}

Deno.test("SMTPChannel passes a failing process_message() to handle_error()", async (t) => {
  for (const failure of ["throw", "reject"] as const) {
    await t.step(failure, async () => {
      WatchedChannel.errors = [];
      const server = new Failing(["127.0.0.1", 0]);
      server.failure = failure;
      server.channel_class = WatchedChannel;
      await talkTo(server, async (client) => {
        await client.commands(...TO_DATA);
        await client.write("body\r\n.\r\n");
        // As in Python: no reply, the connection is closed.
        assert.ok(await client.atEof());
      });
      assert.equal(WatchedChannel.errors.length, 1);
      assert.equal((WatchedChannel.errors[0] as Error).message, "no storage");
    });
  }
});

Deno.test("SMTPServer.process_message() must be overridden", async () => {
  const errors: unknown[] = [];
  class Quiet extends SMTPChannel {
    override handle_error(error: unknown): void {
      errors.push(error);
      this.close();
    }
  }
  const server = new SMTPServer(["127.0.0.1", 0]);
  server.channel_class = Quiet;
  await talkTo(server, async (client) => {
    await client.commands(...TO_DATA);
    await client.write("spam\r\n.\r\n");
    assert.ok(await client.atEof());
  });
  assert.match(String(errors[0]), /process_message\(\) must be overridden/);
});

Deno.test("DebuggingServer prints messages as Python's does", async () => {
  const lines: string[] = [];
  class Captured extends DebuggingServer {
    override print(line: string): void {
      lines.push(line);
    }
  }
  const server = new Captured(["127.0.0.1", 0]);
  await serving(server, (port) =>
    converse(port, [
      "EHLO x",
      "MAIL FROM:<a@b> BODY=8BITMIME",
      "RCPT TO:<c@d>",
      "DATA",
      "Subject: hi\r\n\r\nbody \u00e9\r\n.",
    ]));
  assert.deepEqual(lines, [
    "---------- MESSAGE FOLLOWS ----------",
    "mail options: ['BODY=8BITMIME']",
    "Subject: hi",
    "X-Peer: 127.0.0.1",
    "",
    "body \u00e9",
    "------------ END MESSAGE ------------",
  ]);
});

/** `data` with each CRLF turned into LF, as a Maildir stores lines. */
function toLf(data: Uint8Array): Uint8Array {
  return data.filter((byte, i) => byte !== 0x0d || data[i + 1] !== 0x0a);
}

/** A message of about 1 MiB whose lines often start (or are) dots. */
function bigMessage(): Uint8Array {
  const lines = ["Subject: a big one", "From: big@example.com", ""];
  const patterns = [
    ".",
    "..",
    "...",
    ".leading dot",
    "..two leading dots",
    "middle . dot",
    "trailing dot.",
    "",
    "x".repeat(76),
    ". .",
  ];
  let size = 0;
  for (let i = 0; size < 1024 * 1024; i++) {
    const line = `${patterns[i % patterns.length]}${
      i % 7 === 0 ? ` ${i}` : ""
    }`;
    lines.push(line);
    size += line.length + 2;
  }
  return encoder.encode(`${lines.join("\r\n")}\r\n`);
}

function utf8Message(): Uint8Array {
  return concat([
    encoder.encode(
      "Subject: 8-bit\r\nContent-Type: text/plain; charset=utf-8\r\n" +
        "Content-Transfer-Encoding: 8bit\r\n\r\nZa\u017c\u00f3\u0142\u0107 " +
        "g\u0119\u015bl\u0105 ja\u017a\u0144\r\n\u65e5\u672c\u8a9e \ud83d\udce8\r\n" +
        ".\u00e9 after a dot\r\n",
    ),
    // Bytes that are not UTF-8 at all must pass untouched too.
    new Uint8Array([0xff, 0xfe, 0x80, 0x0d, 0x0a]),
  ]);
}

Deno.test({
  name: "smtpd.ts stores what smtplib sends, byte for byte",
  ignore: !HAS_SMTPLIB,
  async fn() {
    await using inputs = await tempDir();
    await using dir = await tempDir();
    const messages = {
      multi: encoder.encode("Subject: many\r\n\r\nto three people\r\n"),
      big: bigMessage(),
      utf8: utf8Message(),
      rset: encoder.encode("Subject: after RSET\r\n\r\nonly this one\r\n"),
    };
    for (const [name, data] of Object.entries(messages)) {
      await Deno.writeFile(`${inputs.path}/${name}`, data);
    }
    const file = (name: string) => `${inputs.path}/${name}`;
    await withSmtpd(["--maildir", dir.path], async (port) => {
      const results = await smtplib(port, [
        ["ehlo", "client.example"],
        [
          "sendmail",
          "multi@example.com",
          ["a@example.com", "b@example.org", "c@example.net"],
          file("multi"),
          [],
        ],
        ["sendmail", "big@example.com", ["big@example.org"], file("big"), []],
        ["sendmail", "utf8@example.com", ["utf8@example.org"], file("utf8"), [
          "BODY=8BITMIME",
        ]],
        ["mail", "dropped@example.com"],
        ["rcpt", "dropped@example.org"],
        ["rset"],
        ["mail", "rset@example.com"],
        ["rcpt", "kept@example.org"],
        ["data", file("rset")],
      ]);
      assert.deepEqual(results.slice(1), [
        ["ok", {}],
        ["ok", {}],
        ["ok", {}],
        ["ok", [250, "OK"]],
        ["ok", [250, "OK"]],
        ["ok", [250, "OK"]],
        ["ok", [250, "OK"]],
        ["ok", [250, "OK"]],
        ["ok", [250, "OK"]],
      ]);
    });
    // Each file is in place before its 250 is sent.
    const files = await stored(dir.path);
    assert.deepEqual([...files.keys()].sort(), [
      "big@example.com",
      "multi@example.com",
      "rset@example.com",
      "utf8@example.com",
    ]);
    const expect = (from: string, to: string[], data: Uint8Array) =>
      concat([encoder.encode(header(from, to)), toLf(data)]);
    assert.deepEqual(
      files.get("multi@example.com"),
      expect("multi@example.com", [
        "a@example.com",
        "b@example.org",
        "c@example.net",
      ], messages.multi),
    );
    assert.ok(messages.big.length > 1024 * 1024);
    assert.deepEqual(
      files.get("big@example.com"),
      expect("big@example.com", ["big@example.org"], messages.big),
    );
    assert.deepEqual(
      files.get("utf8@example.com"),
      expect("utf8@example.com", ["utf8@example.org"], messages.utf8),
    );
    assert.deepEqual(
      files.get("rset@example.com"),
      expect("rset@example.com", ["kept@example.org"], messages.rset),
    );
  },
});

Deno.test({
  name: "smtpd.ts refuses an oversize message with 552 and keeps serving",
  ignore: !HAS_SMTPLIB,
  async fn() {
    await using inputs = await tempDir();
    await using dir = await tempDir();
    const big = encoder.encode(`Subject: big\r\n\r\n${"x".repeat(5000)}\r\n`);
    const small = encoder.encode("Subject: small\r\n\r\nfits\r\n");
    const bigFile = `${inputs.path}/big`;
    const smallFile = `${inputs.path}/small`;
    await Deno.writeFile(bigFile, big);
    await Deno.writeFile(smallFile, small);
    await withSmtpd(
      ["--maildir", dir.path, "--size-limit", "4096"],
      async (port) => {
        // With EHLO, smtplib declares SIZE= and MAIL is refused up front.
        assert.deepEqual(
          await smtplib(port, [
            ["ehlo", "client"],
            ["sendmail", "big1@example.com", ["to@example.com"], bigFile, []],
            [
              "sendmail",
              "small1@example.com",
              ["to@example.com"],
              smallFile,
              [],
            ],
          ]).then((r) => r.slice(1)),
          [
            [
              "SMTPSenderRefused",
              552,
              "Error: message size exceeds fixed maximum message size",
            ],
            ["ok", {}],
          ],
        );
        // With HELO there is no SIZE: the data is refused after the final dot,
        // and smtplib's RSET and next message go through.
        assert.deepEqual(
          await smtplib(port, [
            ["helo", "client"],
            ["sendmail", "big2@example.com", ["to@example.com"], bigFile, []],
            [
              "sendmail",
              "small2@example.com",
              ["to@example.com"],
              smallFile,
              [],
            ],
          ]).then((r) => r.slice(1)),
          [
            ["SMTPDataError", 552, "Error: Too much mail data"],
            ["ok", {}],
          ],
        );
      },
    );
    assert.deepEqual([...(await stored(dir.path)).keys()].sort(), [
      "small1@example.com",
      "small2@example.com",
    ]);
  },
});

Deno.test("smtpd.ts serves swaks", async (t) => {
  if (!HAS_SWAKS) {
    console.log(
      "swaks is not installed (apt-get install swaks): skipping its steps",
    );
  }
  await t.step({
    name: "a message from a file to two recipients is stored byte for byte",
    ignore: !HAS_SWAKS,
    async fn() {
      await using inputs = await tempDir();
      await using dir = await tempDir();
      const message = encoder.encode(
        "Subject: from swaks\r\nFrom: swaks@example.com\r\n\r\nline one\r\n" +
          ".leading dot\r\n.\r\nza\u017c\u00f3\u0142\u0107\r\nlast\r\n",
      );
      const input = `${inputs.path}/message`;
      await Deno.writeFile(input, message);
      await withSmtpd(["--maildir", dir.path], async (port) => {
        const { code, stdout } = await swaks(port, [
          "--to",
          "one@example.com,two@example.org",
          "--data",
          `@${input}`,
        ]);
        assert.equal(code, 0, decoder.decode(stdout));
        assert.match(decoder.decode(stdout), /<- {2}250 OK/);
      });
      const file = (await stored(dir.path)).get("swaks@example.com")!;
      const expected = concat([
        encoder.encode(
          header("swaks@example.com", ["one@example.com", "two@example.org"]),
        ),
        toLf(message),
      ]);
      // swaks ends its DATA with one more empty line of its own.
      assert.deepEqual(file.subarray(0, expected.length), expected);
      assert.ok(
        ["", "\n"].includes(decoder.decode(file.subarray(expected.length))),
      );
    },
  });
  await t.step({
    name: "a session that quits after RCPT gets Python's replies",
    ignore: !HAS_SWAKS,
    async fn() {
      await withSmtpd([], async (port) => {
        const { code, stdout } = await swaks(port, [
          "--to",
          "one@example.com",
          "--quit-after",
          "RCPT",
        ]);
        assert.equal(code, 0, decoder.decode(stdout));
        const transcript = decoder.decode(stdout);
        assert.match(transcript, /<- {2}250 HELP/);
        assert.match(transcript, /<- {2}221 Bye/);
      });
    },
  });
});

Deno.test("smtpd.ts without --maildir prints messages as Python's DebuggingServer", async () => {
  const stdout = await withSmtpd([], async (port) => {
    await RawClient.session(port, async (client) => {
      await client.commands(
        "EHLO x",
        "MAIL FROM:<a@example.com> BODY=8BITMIME",
        "RCPT TO:<b@example.com>",
        "DATA",
      );
      await client.write(
        "Subject: printed\r\n\r\nhello \u00e9\r\n..dot\r\n.\r\n",
      );
      assert.deepEqual(await client.reply(), ["250 OK"]);
      assert.deepEqual(await client.command("QUIT"), ["221 Bye"]);
    });
  });
  assert.equal(
    stdout,
    [
      "---------- MESSAGE FOLLOWS ----------",
      "mail options: ['BODY=8BITMIME']",
      "Subject: printed",
      "X-Peer: 127.0.0.1",
      "",
      "hello \u00e9",
      ".dot",
      "------------ END MESSAGE ------------",
      "",
    ].join("\n"),
  );
});
