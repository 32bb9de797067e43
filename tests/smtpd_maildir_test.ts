// The SMTP example's Maildir storage, read back by Python's mailbox module,
// and the command-line server's shutdown: SIGINT, and SIGTERM with --grace,
// after which a message is stored if and only if its 250 was sent.

import assert from "node:assert/strict";
import { tempDir } from "./_helpers.ts";
import {
  HAS_SMTPLIB,
  header,
  RawClient,
  type Smtpd,
  startSmtpd,
  stored,
  withSmtpd,
} from "./_smtp_helpers.ts";

const decoder = new TextDecoder();

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
