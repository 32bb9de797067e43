// The SMTP example's STARTTLS (RFC 3207): the command-line server with
// --tls-cert/--tls-key upgrades sessions for swaks and Python's smtplib,
// which check its certificate against the test CA. (The replies to STARTTLS
// out of order are among the command cases in smtpd_commands_test.ts.)

import assert from "node:assert/strict";
import { tempDir } from "./_helpers.ts";
import {
  CA_FILE,
  CERT_FILE,
  HAS_SMTPLIB,
  HAS_SWAKS,
  KEY_FILE,
  stored,
  swaks,
  withSmtpd,
} from "./_smtp_helpers.ts";

const decoder = new TextDecoder();

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
