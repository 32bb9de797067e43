// The SMTP server example (examples/smtpd/, run as examples/smtpd/smtpd.ts):
// the channel's command handling through real sockets in-process, a session
// for session comparison with Python 3.11's own smtpd, and the command-line
// server run as a subprocess and driven by clients nobody here wrote
// (Python's smtplib, swaks).

import assert from "node:assert/strict";
import { close_all, socket_map } from "@asyncore/asyncore";
import {
  DebuggingServer,
  type ProcessMessageResult,
  SMTPChannel,
  SMTPServer,
} from "../examples/smtpd/mod.ts";
import { parseAddress } from "../examples/smtpd/_address.ts";
import { concat } from "./_helpers.ts";
import {
  HAS_SMTPLIB,
  Lines,
  RawClient,
  Recorder,
  run,
  SCRIPT,
  serving,
  type Smtpd,
  smtplib,
  startSmtpd,
  talkTo,
  withSmtpd,
} from "./_smtp_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Python 3.12 dropped smtpd; smtplib is everywhere.
const HAS_SMTPD = run("python3", [
  "-W",
  "ignore",
  "-c",
  "import asyncore, smtpd",
]);
const HAS_SWAKS = run("swaks", ["--version"]);

// Test-only certificates (tests/fixtures/make_certs.sh).
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const CA_FILE = `${FIXTURES}tls_ca.pem`;
const CERT_FILE = `${FIXTURES}tls_server.pem`;
const KEY_FILE = `${FIXTURES}tls_server.key`;
const TLS = {
  cert: Deno.readTextFileSync(CERT_FILE),
  key: Deno.readTextFileSync(KEY_FILE),
};

// A session's commands up to DATA's go-ahead for one message.
const TO_DATA = ["HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"];

// The replies to three accepted lines (MAIL, RCPT or a message's end), DATA,
// a message and QUIT.
const TRANSACTION_REPLIES = [
  "250 OK",
  "250 OK",
  "250 OK",
  "354 End data with <CR><LF>.<CR><LF>",
  "250 OK",
  "221 Bye",
];

/** Opens a session, checks the greeting, runs `lines` and returns replies. */
async function converse(port: number, lines: string[]): Promise<string[][]> {
  const client = await RawClient.open(port);
  try {
    const greeting = await client.reply();
    assert.match(greeting[0]!, /^220 \S+ asyncore SMTP server version/);
    const replies: string[][] = [];
    for (const line of lines) replies.push(await client.command(line));
    return replies;
  } finally {
    client.close();
  }
}

type Options = ConstructorParameters<typeof SMTPServer>[1];

// [what, server options, command lines, the last reply line expected]: the
// cases of CPython's Lib/test/test_smtpd.py, through a real socket.
const COMMAND_CASES: [string, Options, string[], string][] = [
  ["an empty line is bad syntax", {}, [""], "500 Error: bad syntax"],
  ["EHLO ends with HELP", {}, ["EHLO example"], "250 HELP"],
  ["EHLO needs a name", {}, ["EHLO"], "501 Syntax: EHLO hostname"],
  [
    "EHLO twice",
    {},
    ["EHLO example", "EHLO example"],
    "503 Duplicate HELO/EHLO",
  ],
  [
    "HELO after EHLO",
    {},
    ["EHLO example", "HELO example"],
    "503 Duplicate HELO/EHLO",
  ],
  [
    "HELO twice",
    {},
    ["HELO example", "HELO example"],
    "503 Duplicate HELO/EHLO",
  ],
  [
    "EHLO after HELO",
    {},
    ["HELO example", "EHLO example"],
    "503 Duplicate HELO/EHLO",
  ],
  ["HELO needs a name", {}, ["HELO"], "501 Syntax: HELO hostname"],
  [
    "HELP lists the commands",
    {},
    ["HELP"],
    "250 Supported commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY",
  ],
  ["HELP MAIL", {}, ["HELP MAIL"], "250 Syntax: MAIL FROM: <address>"],
  [
    "HELP MAIL after EHLO",
    {},
    ["EHLO example", "HELP mail"],
    "250 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
  ],
  [
    "HELP for an unknown command",
    {},
    ["HELP SPAM"],
    "501 Supported commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY",
  ],
  [
    "MAIL parameters after HELO",
    {},
    ["HELO example", "MAIL from:<foo@example.com> SIZE=1234"],
    "501 Syntax: MAIL FROM: <address>",
  ],
  ["space after the colon", {}, [
    "HELO example",
    "MAIL from:   <foo@example.com>",
  ], "250 OK"],
  [
    "space after the colon with SIZE",
    {},
    ["EHLO example", "MAIL from:   <foo@example.com> size=20"],
    "250 OK",
  ],
  ["NOOP", {}, ["NOOP"], "250 OK"],
  ["NOOP after HELO", {}, ["HELO example", "NOOP"], "250 OK"],
  ["NOOP takes no argument", {}, ["NOOP hi"], "501 Syntax: NOOP"],
  ["QUIT", {}, ["QUIT"], "221 Bye"],
  ["QUIT ignores its argument", {}, ["QUIT bye bye"], "221 Bye"],
  [
    "a command line over 512 bytes",
    {},
    ["HELO example", `MAIL from: ${"a".repeat(512)}@example`],
    "500 Error: line too long",
  ],
  [
    "a MAIL line at the limit EHLO raised by 26 for SIZE",
    {},
    ["EHLO example", `MAIL from:<${"a".repeat(512 + 26 - 20)}@example>`],
    "250 OK",
  ],
  [
    "a MAIL line one byte over that limit",
    {},
    ["EHLO example", `MAIL from:<${"a".repeat(512 + 26 - 19)}@example>`],
    "500 Error: line too long",
  ],
  [
    "a MAIL line at the limit raised by 36 with SMTPUTF8",
    { enable_SMTPUTF8: true },
    ["ehlo example", `MAIL from:<${"a".repeat(512 + 36 - 20)}@example>`],
    "250 OK",
  ],
  [
    "SMTPUTF8 when it is not offered",
    {},
    ["EHLO example", "MAIL from: <naive@example.com> BODY=8BITMIME SMTPUTF8"],
    "555 MAIL FROM parameters not recognized or not implemented",
  ],
  [
    "SMTPUTF8 when it is offered",
    { enable_SMTPUTF8: true },
    ["EHLO example", "MAIL from: <naïve@example.com> BODY=8BITMIME SMTPUTF8"],
    "250 OK",
  ],
  [
    "SMTPUTF8 with a value",
    { enable_SMTPUTF8: true },
    ["EHLO example", "MAIL from: <a@example.com> SMTPUTF8=yes"],
    "501 Error: SMTPUTF8 takes no arguments",
  ],
  [
    "MAIL SIZE",
    {},
    ["EHLO example", "MAIL FROM:<eggs@example> SIZE=512"],
    "250 OK",
  ],
  [
    "MAIL SIZE that is not a number",
    {},
    ["EHLO example", "MAIL FROM:<eggs@example> SIZE=invalid"],
    "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
  ],
  [
    "MAIL SIZE over the limit",
    { data_size_limit: 2048 },
    ["EHLO example", "MAIL FROM:<eggs@example> SIZE=2096"],
    "552 Error: message size exceeds fixed maximum message size",
  ],
  [
    "an unknown MAIL parameter",
    {},
    ["EHLO example", "MAIL FROM:<eggs@example> ham=green"],
    "555 MAIL FROM parameters not recognized or not implemented",
  ],
  [
    "an unknown RCPT parameter",
    {},
    [
      "EHLO example",
      "MAIL FROM:<eggs@example>",
      "RCPT TO:<eggs@example> ham=green",
    ],
    "555 RCPT TO parameters not recognized or not implemented",
  ],
  [
    "BODY=9BIT",
    {},
    ["EHLO example", "MAIL from: <foo@example.com> BODY=9BIT"],
    "501 Error: BODY can only be one of 7BIT, 8BITMIME",
  ],
  [
    "BODY=8BITMIME",
    {},
    ["EHLO example", "MAIL from: <foo@example.com> BODY=8BITMIME"],
    "250 OK",
  ],
  [
    "BODY with decode_data, which offers no 8BITMIME",
    { decode_data: true },
    ["EHLO example", "MAIL from: <foo@example.com> BODY=8BITMIME"],
    "555 MAIL FROM parameters not recognized or not implemented",
  ],
  [
    "RCPT needs MAIL",
    {},
    ["HELO example", "RCPT to:spam@example"],
    "503 Error: need MAIL command",
  ],
  [
    "MAIL without a colon after HELO",
    {},
    ["HELO example", "MAIL from eggs@example"],
    "501 Syntax: MAIL FROM: <address>",
  ],
  [
    "MAIL without a colon after EHLO",
    {},
    ["EHLO example", "MAIL from eggs@example"],
    "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
  ],
  [
    "MAIL without an address",
    {},
    ["HELO example", "MAIL from:"],
    "501 Syntax: MAIL FROM: <address>",
  ],
  [
    "MAIL in angle brackets",
    {},
    ["HELO example", "MAIL from:<eggs@example>"],
    "250 OK",
  ],
  ["the null sender", {}, ["EHLO example", "MAIL from:<>"], "250 OK"],
  ["a quoted local part", {}, [
    "EHLO example",
    'MAIL from: <"Fred Blogs"@example.com>',
  ], "250 OK"],
  [
    "a quoted local part without brackets",
    {},
    ["EHLO example", 'MAIL from: "Fred Blogs"@example.com SIZE=1000'],
    "250 OK",
  ],
  [
    "MAIL twice",
    {},
    ["HELO example", "MAIL from:eggs@example", "MAIL from:spam@example"],
    "503 Error: nested MAIL command",
  ],
  [
    "VRFY",
    {},
    ["VRFY eggs@example"],
    "252 Cannot VRFY user, but will accept message and attempt delivery",
  ],
  ["VRFY needs an address", {}, ["VRFY"], "501 Syntax: VRFY <address>"],
  ["EXPN", {}, ["EXPN"], "502 EXPN not implemented"],
  [
    "MAIL without HELO",
    {},
    ["MAIL from:<foo@example.com>"],
    "503 Error: send HELO first",
  ],
  [
    "RCPT without HELO",
    {},
    ["RCPT to eggs@example"],
    "503 Error: send HELO first",
  ],
  ["DATA without HELO", {}, ["DATA spam"], "503 Error: send HELO first"],
  [
    "DATA needs RCPT",
    {},
    ["HELO example", "MAIL From:eggs@example", "DATA"],
    "503 Error: need RCPT command",
  ],
  [
    "RCPT without a colon after HELO",
    {},
    ["HELO example", "MAIL From: eggs@example", "RCPT to eggs@example"],
    "501 Syntax: RCPT TO: <address>",
  ],
  [
    "RCPT without a colon after EHLO",
    {},
    ["EHLO example", "MAIL From: eggs@example", "RCPT to eggs@example"],
    "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]",
  ],
  [
    "lower-case rcpt to",
    {},
    ["HELO example", "MAIL From: eggs@example", "RCPT to: <eggs@example>"],
    "250 OK",
  ],
  [
    "DATA takes no argument",
    {},
    [
      "HELO example",
      "MAIL From:eggs@example",
      "RCPT To:spam@example",
      "DATA spam",
    ],
    "501 Syntax: DATA",
  ],
  [
    "DATA",
    {},
    ["HELO example", "MAIL From:eggs@example", "RCPT To:spam@example", "DATA"],
    "354 End data with <CR><LF>.<CR><LF>",
  ],
  ["RSET after HELO", {}, ["HELO example", "RSET"], "250 OK"],
  ["RSET takes no argument", {}, ["RSET hi"], "501 Syntax: RSET"],
  [
    "an unknown command",
    {},
    ["UNKNOWN_CMD"],
    '500 Error: command "UNKNOWN_CMD" not recognized',
  ],
  [
    "STARTTLS without a certificate is unknown, as in Python",
    {},
    ["EHLO example", "STARTTLS"],
    '500 Error: command "STARTTLS" not recognized',
  ],
  [
    "STARTTLS takes no argument",
    { tls: TLS },
    ["EHLO example", "STARTTLS now"],
    "501 Syntax: STARTTLS",
  ],
  [
    "STARTTLS inside a transaction",
    { tls: TLS },
    ["EHLO example", "MAIL FROM:<eggs@example>", "STARTTLS"],
    "503 Error: MAIL transaction in progress",
  ],
  [
    "EHLO offers STARTTLS with a certificate",
    { tls: TLS },
    ["EHLO example"],
    "250 HELP",
  ],
];

Deno.test("SMTPChannel answers each command with Python's smtpd reply", async (t) => {
  for (const [what, options, lines, expected] of COMMAND_CASES) {
    await t.step(what, async () => {
      const server = new Recorder(["127.0.0.1", 0], options);
      const replies = await serving(server, (port) => converse(port, lines));
      assert.equal(replies.at(-1)!.at(-1), expected);
      const offered = replies[0]!.includes("250-STARTTLS");
      assert.equal(offered, lines[0] === "EHLO example" && !!options?.tls);
    });
  }
});

Deno.test("SMTPChannel lists SIZE, 8BITMIME and SMTPUTF8 in EHLO as configured", async (t) => {
  const cases: [Options, string[]][] = [
    [{}, ["SIZE 33554432", "8BITMIME", "HELP"]],
    [{ data_size_limit: 0 }, ["8BITMIME", "HELP"]],
    [{ data_size_limit: 1000, enable_SMTPUTF8: true }, [
      "SIZE 1000",
      "8BITMIME",
      "SMTPUTF8",
      "HELP",
    ]],
    [{ decode_data: true }, ["SIZE 33554432", "HELP"]],
  ];
  for (const [options, extensions] of cases) {
    await t.step(JSON.stringify(options), async () => {
      const server = new Recorder(["127.0.0.1", 0], options);
      const [ehlo] = await serving(
        server,
        (port) => converse(port, ["EHLO me"]),
      );
      assert.deepEqual(ehlo!.slice(1).map((line) => line.slice(4)), extensions);
      assert.ok(ehlo!.slice(0, -1).every((line) => line.startsWith("250-")));
    });
  }
});

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

Deno.test("SMTPChannel answers where Python's smtpd would hang up or stall", async (t) => {
  const cases: [string, string[], string[]][] = [
    // Python's channel stays in DATA after 552; this one takes commands again.
    [
      "a session goes on after 552",
      [
        "HELO x",
        "MAIL FROM:<a@b>",
        "RCPT TO:<c@d>",
        "DATA",
        `${"x".repeat(40)}\r\n.`,
        "RSET",
        "MAIL FROM:<e@f>",
      ],
      ["552 Error: Too much mail data", "250 OK", "250 OK"],
    ],
    // An address the email parser raises on.
    ["an address that cannot be parsed", ["HELO x", "MAIL FROM:<a@>", "NOOP"], [
      "501 Syntax: MAIL FROM: <address>",
      "250 OK",
    ]],
    // Python cannot encode the echo in ASCII and drops the connection.
    ["a non-ASCII unknown command", ["CAF\u00c9", "NOOP"], [
      '500 Error: command "CAF?" not recognized',
      "250 OK",
    ]],
    // Python's "\r\n.\r\n" terminator cannot see a "." right after DATA.
    ["an empty message", [
      "HELO x",
      "MAIL FROM:<a@b>",
      "RCPT TO:<c@d>",
      "DATA",
      ".",
      "NOOP",
    ], [
      "354 End data with <CR><LF>.<CR><LF>",
      "250 OK",
      "250 OK",
    ]],
  ];
  for (const [what, lines, expected] of cases) {
    await t.step(what, async () => {
      const server = new Recorder(["127.0.0.1", 0], { data_size_limit: 32 });
      const replies = await serving(server, (port) => converse(port, lines));
      assert.deepEqual(
        replies.slice(-expected.length).map((r) => r.at(-1)),
        expected,
      );
    });
  }
  await t.step("a command line that is not UTF-8", async () => {
    const server = new Recorder(["127.0.0.1", 0]);
    await talkTo(server, async (client) => {
      assert.deepEqual(
        await client.command(new Uint8Array([0x48, 0xff, 0x4f])),
        ["500 Error: bad syntax"],
      );
      assert.deepEqual(await client.command("NOOP"), ["250 OK"]);
    });
  });
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

Deno.test("SMTPChannel answers pipelined commands in order", async () => {
  const server = new Recorder(["127.0.0.1", 0]);
  await talkTo(server, async (client) => {
    await client.write(
      "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBOGUS\r\nRCPT TO:<e@f>\r\nDATA\r\n",
    );
    assert.equal((await client.reply()).at(-1), "250 HELP");
    assert.deepEqual(await client.reply(), ["250 OK"]);
    assert.deepEqual(await client.reply(), ["250 OK"]);
    assert.deepEqual(await client.reply(), [
      '500 Error: command "BOGUS" not recognized',
    ]);
    assert.deepEqual(await client.reply(), ["250 OK"]);
    assert.deepEqual(await client.reply(), [
      "354 End data with <CR><LF>.<CR><LF>",
    ]);
    await client.write(
      "one\r\n.\r\nMAIL FROM:<g@h>\r\nRCPT TO:<i@j>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n",
    );
    await client.expectReplies(...TRANSACTION_REPLIES);
    assert.ok(await client.atEof());
  });
  assert.deepEqual(
    server.received.map((
      m,
    ) => [m.mailfrom, m.rcpttos, decoder.decode(m.data as Uint8Array)]),
    [
      ["a@b", ["c@d", "e@f"], "one"],
      ["g@h", ["i@j"], "two"],
    ],
  );
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

Deno.test("SMTPServer starts its channel_class, whose smtp_* methods are commands", async () => {
  class PingChannel extends SMTPChannel {
    smtp_PING(arg: string | null): void {
      this.push(`250 PONG ${arg ?? ""}`.trim());
    }
  }
  const server = new Recorder(["127.0.0.1", 0]);
  server.channel_class = PingChannel;
  const replies = await serving(
    server,
    (port) => converse(port, ["ping", "PING again"]),
  );
  assert.deepEqual(replies, [["250 PONG"], ["250 PONG again"]]);
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

// ---------------------------------------------------------------------------
// Session for session against Python 3.11's smtpd.

const PYTHON_SMTPD = `
import warnings; warnings.simplefilter("ignore")
import asyncore, json, smtpd, socket, sys
config = json.loads(sys.argv[1])
class Recorder(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        print(json.dumps({"peer": peer[0], "mailfrom": mailfrom, "rcpttos": rcpttos,
            "data": data if isinstance(data, str) else data.hex(), "options": kwargs}), flush=True)
        text = data if isinstance(data, str) else data.decode("latin-1")
        if text.startswith("reply:"):
            return text[6:]
server = Recorder(("127.0.0.1", 0), None, data_size_limit=config["size"],
    enable_SMTPUTF8=config["utf8"], decode_data=config["decode"])
print(json.dumps({"port": server.socket.getsockname()[1], "fqdn": socket.getfqdn()}), flush=True)
asyncore.loop()
`;

interface PythonConfig {
  size: number | null;
  utf8: boolean;
  decode: boolean;
}

// A session: command lines (one reply each) or raw sends with a reply count.
type Step = string | { send: string; replies: number };

const SESSIONS: [string, PythonConfig, Step[]][] = [
  [
    "every command, bad parameters and three messages after EHLO",
    { size: 33554432, utf8: false, decode: false },
    [
      "EHLO example",
      "HELP",
      "HELP MAIL",
      "HELP rcpt",
      "HELP SPAM",
      "HELP ehlo",
      "NOOP",
      "NOOP hi",
      "VRFY eggs@example",
      'VRFY <"Fred Blogs"@example.com>',
      "VRFY <>",
      "VRFY",
      "EXPN",
      "EXPN list",
      "RSET hi",
      "RSET",
      "UNKNOWN_CMD",
      "",
      "   ",
      "EHLO again",
      "MAIL FROM:<eggs@example> SIZE=invalid",
      "MAIL FROM:<eggs@example> ham=green",
      "MAIL FROM:<eggs@example> SIZE=",
      "MAIL FROM:<eggs@example> =x",
      "MAIL FROM:<eggs@example> BODY",
      "MAIL FROM:<eggs@example> BODY=9BIT",
      "MAIL FROM:<eggs@example> SMTPUTF8",
      "MAIL FROM:<eggs@example> SIZE=99999999999",
      "MAIL FROM: eggs@example >",
      "RCPT TO:<early@example>",
      "DATA",
      "mail from:   <(comment)a.b@[127.0.0.1]>   size=20   body=8bitmime",
      "MAIL FROM:<nested@example>",
      "RCPT TO:<x@example> NOTIFY=NEVER",
      "RCPT TO:x@example>",
      "RCPT TO:<@route,@other:routed@example>",
      'RCPT TO: "quoted name"@example',
      "RCPT TO:plain@example",
      "DATA now",
      "DATA",
      {
        send:
          "Subject: one\r\n\r\n..\r\n.leading\r\n...three\r\nmid . dot\r\n\r\n\r\nbare\nlf and bare\rcr\r\n.\r\n",
        replies: 1,
      },
      "MAIL FROM:<>",
      "RCPT TO:<postmaster>",
      "DATA",
      { send: "reply:250 Custom reply\r\n.\r\n", replies: 1 },
      {
        send:
          "MAIL FROM:<p@example>\r\nRCPT TO:<q@example>\r\nRCPT TO:<r@example>\r\nDATA\r\n",
        replies: 4,
      },
      { send: `${"x".repeat(1000)}\r\n.\r\nRSET\r\nNOOP\r\n`, replies: 3 },
      `MAIL FROM:<${"a".repeat(512 + 26 - 20)}@example>`,
      "RSET",
      `MAIL FROM:<${"a".repeat(512 + 26 - 19)}@example>`,
      `NOOP ${"n".repeat(600)}`,
      "QUIT",
    ],
  ],
  [
    "a session without EHLO, within 512-byte lines",
    { size: 33554432, utf8: false, decode: false },
    [
      "MAIL FROM:<a@example>",
      "RCPT TO:<b@example>",
      "DATA x",
      "HELO",
      "HELO example.org",
      "HELP MAIL",
      "MAIL FROM:<a@example> SIZE=10",
      "MAIL FROM: a@example",
      "RCPT TO: b@example",
      "RCPT TO: <c@example> X=Y",
      "DATA",
      { send: "one line\r\n.\r\n", replies: 1 },
      `MAIL FROM:<${"a".repeat(512 - 20)}@example>`,
      `MAIL FROM:<${"a".repeat(512 - 19)}@example>`,
      "QUIT",
    ],
  ],
  [
    "SMTPUTF8 with a 64-byte limit",
    { size: 64, utf8: true, decode: false },
    [
      "ehlo example",
      "MAIL FROM:<na\u00efve@exampl\u00e9> BODY=8BITMIME SMTPUTF8",
      "RCPT TO:<sp\u00e4m@exampl\u00e9>",
      "DATA",
      { send: "utf8 \u017c\u017a\u0107\r\n.\r\n", replies: 1 },
      "MAIL FROM:<a@example> SMTPUTF8=yes",
      "MAIL FROM:<a@example> SIZE=65",
      `MAIL FROM:<${"a".repeat(512 + 36 - 20)}@example>`,
      "RSET",
      `MAIL FROM:<${"a".repeat(512 + 36 - 19)}@example>`,
      "MAIL FROM:<a@example>",
      "RCPT TO:<b@example>",
      "DATA",
      { send: `${"y".repeat(30)}\r\n${"z".repeat(32)}\r\n.\r\n`, replies: 1 },
      "QUIT",
    ],
  ],
  [
    "decode_data without a size limit",
    { size: null, utf8: false, decode: true },
    [
      "EHLO example",
      "MAIL FROM:<a@example> BODY=7BIT",
      "MAIL FROM:<a@example> SIZE=100000000000",
      "RCPT TO:<b@example>",
      "DATA",
      {
        send: "Subject: decoded\r\n\r\nutf8 \u017c\u017a\u0107\r\n.\r\n",
        replies: 1,
      },
      "QUIT",
    ],
  ],
  [
    "a message over a 32-byte limit",
    { size: 32, utf8: false, decode: false },
    [
      "HELO example",
      "MAIL FROM:<a@example>",
      "RCPT TO:<b@example>",
      "DATA",
      // The last reply of a session with Python: its channel stays in DATA.
      { send: "This message is longer than 32 bytes\r\n.\r\n", replies: 1 },
    ],
  ],
];

/** Runs `steps` against the server on `port`, returning every reply line. */
async function transcript(port: number, steps: Step[]): Promise<string[]> {
  const client = await RawClient.open(port);
  try {
    const lines = [...await client.reply()];
    for (const step of steps) {
      const { send, replies } = typeof step === "string"
        ? { send: `${step}\r\n`, replies: 1 }
        : step;
      await client.write(send);
      for (let i = 0; i < replies; i++) lines.push(...await client.reply());
    }
    return lines;
  } finally {
    client.close();
  }
}

function normalize(lines: string[], fqdn: string): string[] {
  return lines.map((line, i) =>
    i === 0 ? line.slice(0, 3) : line.replace(fqdn, "<fqdn>")
  );
}

Deno.test({
  name: "SMTPChannel replies and delivers exactly as Python 3.11's smtpd",
  ignore: !HAS_SMTPD,
  async fn(t) {
    for (const [what, config, steps] of SESSIONS) {
      await t.step(what, async () => {
        const python = new Deno.Command("python3", {
          args: ["-c", PYTHON_SMTPD, JSON.stringify(config)],
          stdin: "null",
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const output = new Lines(python.stdout);
        let expected: string[];
        let pythonMessages: unknown[];
        try {
          const hello = JSON.parse((await output.next())!);
          expected = normalize(await transcript(hello.port, steps), hello.fqdn);
        } finally {
          python.kill("SIGTERM");
          await python.status;
          pythonMessages = (await output.rest()).split("\n").filter(Boolean)
            .map((line) => {
              try {
                return JSON.parse(line);
              } catch {
                throw new Error(`python: ${line}`);
              }
            });
        }
        const server = new Recorder(["127.0.0.1", 0], {
          data_size_limit: config.size,
          enable_SMTPUTF8: config.utf8,
          decode_data: config.decode,
        });
        server.respond = ({ data }) => {
          const text = typeof data === "string"
            ? data
            : new TextDecoder("latin1").decode(data);
          if (text.startsWith("reply:")) return text.slice(6);
        };
        const ours = await serving(
          server,
          async (port) =>
            normalize(await transcript(port, steps), Deno.hostname()),
        );
        assert.deepEqual(ours, expected);
        assert.deepEqual(
          server.received.map((m) => ({
            peer: (m.peer as [string, number])[0],
            mailfrom: m.mailfrom,
            rcpttos: m.rcpttos,
            data: typeof m.data === "string" ? m.data : toHex(m.data),
            options: m.options,
          })),
          pythonMessages,
        );
      });
    }
  },
});

function toHex(data: Uint8Array): string {
  return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
}

// MAIL and RCPT arguments for the comparison with Python's parser below.
const ADDRESS_CASES: string[] = [
  "<eggs@example>",
  "<>",
  "<> SIZE=1",
  "eggs@example",
  "  <foo@example.com>",
  '<"Fred Blogs"@example.com>',
  '"Fred Blogs"@example.com SIZE=1000',
  "<foo@example.com> size=20",
  "<@a,@b:user@host>",
  "<,@a:b@c>",
  "<@a,,@b:c@d>",
  "<user@[1.2.3.4]>",
  "a@[1.2.3.4] x",
  "user",
  "user SIZE=100",
  "<user> SIZE=1",
  "foo bar",
  "<foo@bar",
  "foo@bar>",
  "foo@bar x=y",
  "<fo o@bar>",
  "na\u00efve@exampl\u00e9 BODY=8BITMIME",
  ".a@b",
  "a..b@c",
  "a.@b",
  "(comment) a@b",
  "a@b (c)",
  "<a(b)@c>",
  "a@(x)b",
  "a@b.(x)c",
  "a . b@c",
  "a.b@ c . d",
  "a@b . c x",
  '"a b" c@d',
  'a "b" c@d',
  '"a"."b"@c',
  '"a\\"b"@c',
  '"a\\b"@c',
  "\\a@c",
  "a\\b@c",
  '"unterminated@x',
  '<""@b>',
  "<a@b> <c@d>",
  "< a@b >",
  "<a @b>",
  "<a@b c>",
  "a;b@c",
  "a@b;c",
  "a:b@c",
  "a@b,c@d",
  "a@b\\c",
  "a+b=c@d",
  "x@y=z",
  "a@b\tSIZE=1",
  // Python raises on these (and drops the connection); here: no address.
  "a@",
  "@b",
  "<a@>",
  "a@b.c.",
  "a@b..c",
  "a@.b",
  "a@[1. 2]",
  "a@[1",
  "< >",
  "<",
  "(x",
  ":a@b",
  "<:a@b>",
  "<@a,@b,c@d>",
  "(c) <a@b>",
];

const PYTHON_GETADDR = `
import warnings; warnings.simplefilter("ignore")
import json, smtpd, sys
channel = smtpd.SMTPChannel.__new__(smtpd.SMTPChannel)
def getaddr(arg):
    try:
        return list(channel._getaddr(arg))
    except Exception:
        return None
print(json.dumps([getaddr(arg) for arg in json.load(sys.stdin)]))
`;

Deno.test({
  name: "SMTPChannel parses addresses as Python's smtpd._getaddr() does",
  ignore: !HAS_SMTPD,
  async fn() {
    const child = new Deno.Command("python3", {
      args: ["-c", PYTHON_GETADDR],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(encoder.encode(JSON.stringify(ADDRESS_CASES)));
    await writer.close();
    const { stdout, success } = await child.output();
    assert.ok(success);
    const expected: ([string, string] | null)[] = JSON.parse(
      decoder.decode(stdout),
    );
    for (const [i, arg] of ADDRESS_CASES.entries()) {
      const ours = parseAddress(arg);
      const theirs = expected[i]!;
      if (theirs === null) {
        assert.deepEqual(
          ours,
          ["", ""],
          `Python raises on ${JSON.stringify(arg)}`,
        );
      } else {
        assert.deepEqual(ours, theirs, JSON.stringify(arg));
      }
    }
  },
});

// ---------------------------------------------------------------------------
// examples/smtpd/smtpd.ts as a user runs it, with real clients.

/** A temporary directory for messages, removed at the end of the block. */
async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "smtpd_test_" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** The stored messages, keyed by their X-MailFrom header. */
/** The messages in Maildir `dir`'s new/, by sender; tmp/ must be empty. */
async function stored(dir: string): Promise<Map<string, Uint8Array>> {
  for await (const entry of Deno.readDir(`${dir}/tmp`)) {
    assert.fail(`a temporary file is left: ${entry.name}`);
  }
  const files = new Map<string, Uint8Array>();
  for await (const entry of Deno.readDir(`${dir}/new`)) {
    const data = await Deno.readFile(`${dir}/new/${entry.name}`);
    const from = /X-MailFrom: (.*)\n/.exec(
      decoder.decode(data.subarray(0, 4096)),
    );
    assert.ok(from, `no X-MailFrom in ${entry.name}`);
    files.set(from[1]!, data);
  }
  return files;
}

function header(mailfrom: string, rcpttos: string[]): string {
  return `X-Peer: 127.0.0.1\nX-MailFrom: ${mailfrom}\nX-RcptTo: ${
    rcpttos.join(", ")
  }\n`;
}

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

Deno.test("smtpd.ts answers commands pipelined in one write, in order", async () => {
  await using dir = await tempDir();
  await withSmtpd(["--maildir", dir.path], async (port) => {
    const client = await RawClient.open(port);
    try {
      assert.match((await client.reply())[0]!, /^220 /);
      await client.write(
        "EHLO pipe\r\nMAIL FROM:<p1@example.com>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
      );
      assert.deepEqual((await client.reply()).slice(1), [
        "250-SIZE 33554432",
        "250-8BITMIME",
        "250 HELP",
      ]);
      await client.expectReplies(
        "250 OK",
        "250 OK",
        "250 OK",
        "354 End data with <CR><LF>.<CR><LF>",
      );
      // The end of one message and the whole next transaction in one write:
      // the next MAIL waits for the first message to be stored.
      await client.write(
        "first\r\n.\r\nMAIL FROM:<p2@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n",
      );
      await client.expectReplies(...TRANSACTION_REPLIES);
      assert.ok(await client.atEof());
    } finally {
      client.close();
    }
  });
  const files = await stored(dir.path);
  assert.equal(
    decoder.decode(files.get("p1@example.com")),
    `${header("p1@example.com", ["a@example.com", "b@example.com"])}first\n`,
  );
  assert.equal(
    decoder.decode(files.get("p2@example.com")),
    `${header("p2@example.com", ["c@example.com"])}second\n`,
  );
});

/** Runs swaks as `swaks@example.com` against the server on `port`. */
function swaks(port: number, args: string[]): Promise<Deno.CommandOutput> {
  return new Deno.Command("swaks", {
    args: [
      "--server",
      `127.0.0.1:${port}`,
      "--from",
      "swaks@example.com",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
}

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

// smtplib upgrades with STARTTLS, checking the server's certificate against
// the test CA, says EHLO again and sends one message.
const PYTHON_STARTTLS = `
import json, smtplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=cafile)
with smtplib.SMTP("localhost", port, timeout=60) as client:
    before = client.ehlo()[1].decode().split("\\n")
    code, reply = client.starttls(context=context)
    after = client.ehlo()[1].decode().split("\\n")
    refused = client.sendmail("py@example.com", ["to@example.com"],
                              b"Subject: over TLS\\r\\n\\r\\nsecret\\r\\n")
    print(json.dumps([before, code, reply.decode(), after, refused,
                      client.sock.version()]))
`;

Deno.test("smtpd.ts --tls-cert/--tls-key offers STARTTLS to swaks and Python's smtplib", async (t) => {
  const tlsArgs = ["--tls-cert", CERT_FILE, "--tls-key", KEY_FILE];
  await t.step({
    name: "swaks --tls verifies the certificate and delivers",
    ignore: !HAS_SWAKS,
    async fn() {
      await using dir = await tempDir();
      let transcript = "";
      await withSmtpd(["--maildir", dir.path, ...tlsArgs], async (port) => {
        const { code, stdout } = await swaks(port, [
          "--to",
          "one@example.com",
          "--tls",
          "--tls-verify",
          "--tls-ca-path",
          CA_FILE,
          "--tls-sni",
          "localhost",
        ]);
        transcript = decoder.decode(stdout);
        assert.equal(code, 0, transcript);
      });
      assert.match(transcript, /<- {2}220 Ready to start TLS/);
      assert.match(transcript, /=== TLS started with cipher TLSv1\.3/);
      assert.match(transcript, /<~ {2}250 OK/);
      assert.ok((await stored(dir.path)).has("swaks@example.com"));
    },
  });
  await t.step({
    name: "smtplib.starttls() then EHLO again, without STARTTLS offered",
    ignore: !HAS_SMTPLIB,
    async fn() {
      await using dir = await tempDir();
      await withSmtpd(["--maildir", dir.path, ...tlsArgs], async (port) => {
        const { success, stdout, stderr } = await new Deno.Command("python3", {
          args: ["-c", PYTHON_STARTTLS, String(port), CA_FILE],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(success, decoder.decode(stderr));
        const [before, code, reply, after, refused, version] = JSON.parse(
          decoder.decode(stdout),
        );
        assert.ok(before.includes("STARTTLS"));
        assert.deepEqual([code, reply], [220, "Ready to start TLS"]);
        assert.ok(!after.includes("STARTTLS"));
        assert.deepEqual(refused, {});
        assert.equal(version, "TLSv1.3");
      });
      const file = (await stored(dir.path)).get("py@example.com")!;
      assert.match(decoder.decode(file), /Subject: over TLS\r?\n\r?\nsecret/);
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

Deno.test("smtpd.ts exits with status 0 on SIGINT, telling an idle client 421", async () => {
  const smtpd = await startSmtpd([]);
  const client = await RawClient.open(smtpd.port);
  await client.reply();
  const { code } = await smtpd.stop("SIGINT");
  assert.match((await client.reply())[0]!, /^421 .* closing transmission/);
  assert.ok(await client.atEof());
  client.close();
  assert.equal(code, 0);
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

Deno.test("smtpd.ts rejects bad arguments with its usage", async (t) => {
  for (
    const args of [
      ["--port", "70000"],
      ["--size-limit", "-1"],
      ["--timeout", "-1"],
      [
        "--maildir",
        SCRIPT, // a file: no Maildir can be made there,
      ],
      ["--bogus"],
      ["--tls-cert", CERT_FILE],
      [
        "--tls-cert",
        "/nonexistent.pem",
        "--tls-key",
        KEY_FILE,
      ],
    ]
  ) {
    await t.step(args.join(" "), async () => {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", SCRIPT, ...args],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(code, 2);
      assert.match(decoder.decode(stderr), /usage: smtpd\.ts/);
    });
  }
});

// Reads a Maildir with Python's mailbox module; prints one object per
// message, sorted by Subject, and what tmp/ and cur/ hold.
const PYTHON_MAILDIR = `
import json, mailbox, os, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
messages = sorted(box.itervalues(), key=lambda m: m["Subject"])
print(json.dumps({
    "messages": [{
        "subject": m["Subject"],
        "mailfrom": m["X-MailFrom"],
        "subdir": m.get_subdir(),
        "body": m.get_payload(decode=True).decode("utf-8"),
    } for m in messages],
    "tmp": os.listdir(os.path.join(sys.argv[1], "tmp")),
    "cur": os.listdir(os.path.join(sys.argv[1], "cur")),
}))
`;

async function readMaildir(path: string): Promise<{
  messages: {
    subject: string;
    mailfrom: string;
    subdir: string;
    body: string;
  }[];
  tmp: string[];
  cur: string[];
}> {
  const { code, stdout, stderr } = await new Deno.Command("python3", {
    args: ["-c", PYTHON_MAILDIR, path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, decoder.decode(stderr));
  return JSON.parse(decoder.decode(stdout));
}

/** EHLO, MAIL, RCPT and DATA, up to the 354. */
async function startMessage(client: RawClient, from: string): Promise<void> {
  assert.equal((await client.command("EHLO client")).at(-1), "250 HELP");
  assert.deepEqual(await client.command(`MAIL FROM:<${from}>`), ["250 OK"]);
  assert.deepEqual(await client.command("RCPT TO:<to@example.com>"), [
    "250 OK",
  ]);
  assert.deepEqual(await client.command("DATA"), [
    "354 End data with <CR><LF>.<CR><LF>",
  ]);
}

Deno.test({
  name:
    "smtpd.ts --maildir delivers into a Maildir that Python's mailbox.Maildir reads",
  ignore: !HAS_SMTPLIB,
  async fn() {
    await using dir = await tempDir();
    // Not there yet: the Maildir and its tmp/, new/ and cur/ are created.
    const maildir = `${dir.path}/Mail`;
    await withSmtpd(["--maildir", maildir], async (port) => {
      await RawClient.session(port, async (client) => {
        await startMessage(client, "one@example.com");
        await client.write(
          "Subject: one\r\n\r\nfirst line\r\n..leading dot\r\nza\u017c\u00f3\u0142\u0107\r\n.\r\n",
        );
        assert.deepEqual(await client.reply(), ["250 OK"]);
        assert.deepEqual(await client.command("MAIL FROM:<two@example.com>"), [
          "250 OK",
        ]);
        await client.command("RCPT TO:<to@example.com>");
        await client.command("DATA");
        await client.write("Subject: two\r\n\r\nsecond\r\n.\r\n");
        assert.deepEqual(await client.reply(), ["250 OK"]);
        assert.deepEqual(await client.command("QUIT"), ["221 Bye"]);
      });
    });
    assert.deepEqual(await readMaildir(maildir), {
      messages: [
        {
          subject: "one",
          mailfrom: "one@example.com",
          subdir: "new",
          body: "first line\n.leading dot\nza\u017c\u00f3\u0142\u0107\n",
        },
        {
          subject: "two",
          mailfrom: "two@example.com",
          subdir: "new",
          body: "second\n",
        },
      ],
      tmp: [],
      cur: [],
    });
  },
});

Deno.test("smtpd.ts on SIGTERM lets a message in DATA finish: 250, then 421, and it is stored", async () => {
  await using dir = await tempDir();
  const smtpd = await startSmtpd(["--maildir", dir.path]);
  const sender = await RawClient.open(smtpd.port);
  const idle = await RawClient.open(smtpd.port);
  try {
    await sender.reply();
    await idle.reply();
    await startMessage(sender, "late@example.com");
    await sender.write("Subject: late\r\n\r\nfirst half\r\n");
    const stopping = smtpd.stop("SIGTERM");
    // The idle session is told at once: the shutdown has begun.
    assert.match((await idle.reply())[0]!, /^421 /);
    assert.ok(await idle.atEof());
    await sender.write("second half\r\n.\r\n");
    assert.deepEqual(await sender.reply(), ["250 OK"]);
    assert.match((await sender.reply())[0]!, /^421 /);
    assert.ok(await sender.atEof());
    assert.equal((await stopping).code, 0);
  } finally {
    sender.close();
    idle.close();
  }
  const files = await stored(dir.path);
  assert.equal(
    decoder.decode(files.get("late@example.com")),
    `${
      header("late@example.com", ["to@example.com"])
    }Subject: late\n\nfirst half\nsecond half\n`,
  );
});

Deno.test("smtpd.ts on SIGTERM drops a message not finished within --grace: no 250, nothing stored", async () => {
  await using dir = await tempDir();
  const smtpd = await startSmtpd(["--maildir", dir.path, "--grace", "0.2"]);
  const sender = await RawClient.open(smtpd.port);
  try {
    await sender.reply();
    await startMessage(sender, "never@example.com");
    await sender.write("Subject: never finished\r\n\r\nhalf\r\n");
    const { code } = await smtpd.stop("SIGTERM");
    assert.equal(code, 0);
    assert.equal(await sender.line(), null);
  } finally {
    sender.close();
  }
  assert.equal((await stored(dir.path)).size, 0);
});

Deno.test("smtpd.ts on SIGTERM under load: every message stored got its 250, every 250 is stored", async () => {
  await using dir = await tempDir();
  const smtpd = await startSmtpd(["--maildir", dir.path]);
  const acked = new Set<string>();
  let stopping = null as ReturnType<Smtpd["stop"]> | null;
  // Clients send message after message until the server ends their session;
  // SIGTERM comes once 30 messages were accepted, while others are in flight.
  const client = async (id: number) => {
    const conn = await RawClient.open(smtpd.port);
    try {
      await conn.reply();
      assert.match((await conn.command("HELO load"))[0]!, /^250 /);
      for (let n = 0;; n++) {
        const from = `c${id}m${n}@example.com`;
        await conn.write(
          `MAIL FROM:<${from}>\r\nRCPT TO:<to@example.com>\r\nDATA\r\n`,
        );
        for (const expected of ["250", "250", "354"]) {
          const line = await conn.line();
          if (line === null || !line.startsWith(expected)) return;
        }
        await conn.write(`Subject: ${from}\r\n\r\nbody\r\n.\r\n`);
        const line = await conn.line();
        if (line !== "250 OK") return;
        acked.add(from);
        if (acked.size === 30) stopping = smtpd.stop("SIGTERM");
      }
    } catch (error) {
      // a reset when the server ends the session is an ordinary end here
      if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
    } finally {
      conn.close();
    }
  };
  await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(client));
  assert.ok(stopping !== null, "the clients stopped before SIGTERM");
  assert.equal((await stopping!).code, 0);
  const files = await stored(dir.path);
  assert.deepEqual([...files.keys()].sort(), [...acked].sort());
});
