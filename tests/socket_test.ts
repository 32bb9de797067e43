// Tests of socket.ts: the constants, address validation and conversion.

import assert from "node:assert/strict";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  checkAddress,
  familyOf,
  fromDenoAddr,
  SOCK_DGRAM,
  SOCK_STREAM,
} from "../mod.ts";
import { HAS_PYTHON, tempDir } from "./_helpers.ts";

Deno.test("the constants have Linux's values, as Python's socket module reports", () => {
  assert.equal(AF_UNIX, 1);
  assert.equal(AF_INET, 2);
  assert.equal(AF_INET6, 10);
  assert.equal(SOCK_STREAM, 1);
  assert.equal(SOCK_DGRAM, 2);
});

Deno.test({
  name: "the constants match python3's socket module on this host",
  ignore: !HAS_PYTHON || Deno.build.os !== "linux",
  async fn() {
    const { stdout } = await new Deno.Command("python3", {
      args: [
        "-c",
        "import socket as s; print(s.AF_UNIX, s.AF_INET, s.AF_INET6, s.SOCK_STREAM, s.SOCK_DGRAM)",
      ],
    }).output();
    assert.equal(
      new TextDecoder().decode(stdout).trim(),
      [AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM].join(" "),
    );
  },
});

Deno.test("familyOf() tells IPv4, IPv6 and Unix addresses apart", () => {
  assert.equal(familyOf(["127.0.0.1", 80]), AF_INET);
  assert.equal(familyOf(["localhost", 80]), AF_INET);
  assert.equal(familyOf(["", 0]), AF_INET);
  assert.equal(familyOf(["::1", 80]), AF_INET6);
  assert.equal(familyOf(["fe80::1%lo", 80]), AF_INET6);
  assert.equal(familyOf(["::ffff:127.0.0.1", 80]), AF_INET6);
  assert.equal(familyOf("/tmp/app.sock"), AF_UNIX);
  assert.equal(familyOf("relative.sock"), AF_UNIX);
});

Deno.test("familyOf() throws on a malformed address", () => {
  assert.throws(() => familyOf(42 as never), TypeError);
  assert.throws(() => familyOf("" as never), RangeError);
  assert.throws(() => familyOf(["127.0.0.1", 65536]), RangeError);
});

Deno.test("checkAddress() accepts every well-formed address", () => {
  for (
    const address of [
      ["127.0.0.1", 0],
      ["127.0.0.1", 65535],
      ["::1", 8080],
      ["example.com", 443],
      "/tmp/app.sock",
      "a",
    ]
  ) {
    checkAddress(address, "address");
  }
});

Deno.test("checkAddress() throws TypeError for the wrong shape, naming the argument", async (t) => {
  const cases: [string, unknown][] = [
    ["a number", 8080],
    ["null", null],
    ["undefined", undefined],
    ["an object", { hostname: "127.0.0.1", port: 80 }],
    ["an empty array", []],
    ["a one-item array", ["127.0.0.1"]],
    ["a three-item array", ["127.0.0.1", 80, 0]],
    ["a port as a string", ["127.0.0.1", "80"]],
    ["a host as a number", [127, 80]],
    ["a Symbol inside", [Symbol("host"), 80]],
  ];
  for (const [name, address] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => checkAddress(address, "target"),
        (e: unknown) =>
          e instanceof TypeError &&
          e.message.startsWith("Cannot use target: expected a [host, port]"),
      );
    });
  }
});

Deno.test("checkAddress() throws RangeError for a port or path out of range", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ["port -1", ["127.0.0.1", -1], /port "-1" is not an integer in 0\.\.65535/],
    ["port 65536", ["127.0.0.1", 65536], /port "65536"/],
    ["port 1.5", ["127.0.0.1", 1.5], /port "1\.5"/],
    ["port NaN", ["127.0.0.1", NaN], /port "NaN"/],
    ["port Infinity", ["127.0.0.1", Infinity], /port "Infinity"/],
    ["an empty path", "", /the Unix socket path is empty/],
  ];
  for (const [name, address, message] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => checkAddress(address, "address"),
        (e: unknown) =>
          e instanceof RangeError &&
          e.message.startsWith("Cannot use address") &&
          message.test(e.message),
      );
    });
  }
});

Deno.test("fromDenoAddr() converts TCP addresses to [host, port]", () => {
  assert.deepEqual(
    fromDenoAddr({ transport: "tcp", hostname: "127.0.0.1", port: 8080 }),
    ["127.0.0.1", 8080],
  );
  assert.deepEqual(
    fromDenoAddr({ transport: "tcp", hostname: "::1", port: 1 }),
    ["::1", 1],
  );
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  assert.deepEqual(fromDenoAddr(listener.addr), [
    "127.0.0.1",
    listener.addr.port,
  ]);
});

Deno.test("fromDenoAddr() converts Unix addresses to their path, '' when unnamed", async () => {
  assert.equal(
    fromDenoAddr({ transport: "unix", path: "/tmp/app.sock" }),
    "/tmp/app.sock",
  );
  assert.equal(
    fromDenoAddr({ transport: "unix", path: null } as unknown as Deno.Addr),
    "",
  );
  if (Deno.build.os === "windows") return;
  await using dir = await tempDir();
  const path = `${dir.path}/real.sock`;
  using listener = Deno.listen({ transport: "unix", path });
  assert.equal(fromDenoAddr(listener.addr), path);
  using client = await Deno.connect({ transport: "unix", path });
  using server = await listener.accept();
  assert.equal(fromDenoAddr(client.remoteAddr), path);
  // The client end of a Unix connection has no name.
  assert.equal(fromDenoAddr(server.remoteAddr), "");
});

Deno.test("fromDenoAddr() gives a VSOCK address as [cid, port]", () => {
  assert.deepEqual(
    fromDenoAddr({ transport: "vsock", cid: 3, port: 1024 } as Deno.Addr),
    ["3", 1024],
  );
});

Deno.test("familyOf() agrees with fromDenoAddr() for real listeners", async () => {
  using v4 = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  assert.equal(familyOf(fromDenoAddr(v4.addr)), AF_INET);
  try {
    using v6 = Deno.listen({ hostname: "::1", port: 0 });
    assert.equal(familyOf(fromDenoAddr(v6.addr)), AF_INET6);
  } catch (error) {
    // No IPv6 on this host.
    if (!(error instanceof Deno.errors.AddrNotAvailable)) throw error;
  }
  if (Deno.build.os === "windows") return;
  await using dir = await tempDir();
  using unix = Deno.listen({ transport: "unix", path: `${dir.path}/f.sock` });
  assert.equal(familyOf(fromDenoAddr(unix.addr)), AF_UNIX);
});
