// The host name the server greets with, as Python's socket.getfqdn() gives
// it. Deno has no reverse lookup of the local name, so the host name stands
// in. It needs the "sys" permission: without it (and without a prompt),
// "localhost" is used.

let fqdn: string | undefined;

/** This host's name, or `"localhost"` when it cannot be read. */
export function getfqdn(): string {
  if (fqdn === undefined) {
    fqdn = "localhost";
    try {
      const query = { name: "sys", kind: "hostname" } as const;
      if (Deno.permissions.querySync(query).state === "granted") {
        fqdn = Deno.hostname() || fqdn;
      }
    } catch {
      // no permission API or no host name: keep "localhost"
    }
  }
  return fqdn;
}
