// The SMTP example's commands: each one's reply as in Python's smtpd (the
// cases of CPython's test_smtpd.py), EHLO's extensions, the answers where
// Python's channel would hang up, pipelined commands in process and through
// the command-line server, command methods of a channel_class, and the
// command line's bad arguments.

import assert from "node:assert/strict";
import { SMTPChannel, type SMTPServer } from "../examples/smtpd/mod.ts";
import { tempDir } from "./_helpers.ts";
import {
  CERT_FILE,
  converse,
  header,
  KEY_FILE,
  RawClient,
  Recorder,
  SCRIPT,
  serving,
  stored,
  talkTo,
  TLS,
  TRANSACTION_REPLIES,
  withSmtpd,
} from "./_smtp_helpers.ts";

const decoder = new TextDecoder();

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
