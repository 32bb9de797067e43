// The SMTP example against Python 3.11's own smtpd, session for session: the
// same replies and the same delivered messages, and the same parse of a list
// of tricky addresses. Skipped where Python has no smtpd (3.12 dropped it).

import assert from "node:assert/strict";
import { parseAddress } from "../examples/smtpd/_address.ts";
import { Lines, RawClient, Recorder, run, serving } from "./_smtp_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Python 3.12 dropped smtpd; smtplib is everywhere.
const HAS_SMTPD = run("python3", [
  "-W",
  "ignore",
  "-c",
  "import asyncore, smtpd",
]);

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
