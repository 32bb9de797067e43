// Reading an error's stack while the process has no free file descriptor
// panics Deno 2.9.6, past any try/catch ("Deno has panicked … stacker …
// left: 24 right: 0"): to map a frame of a module it has not mapped yet,
// Deno opens the module's cached emit; when that fails it transpiles the
// module again, and the transpiler's first stack probe on the thread opens
// /proc/self/maps, which fails too. So, as nginx and libuv do, the library
// keeps a spare descriptor, opened on import (before the program can have
// used them all), and frees it for the length of a stack read when no other
// descriptor is free. Where /dev/null cannot be opened (no read permission,
// which is never prompted for), stacks are read as they are.

const NULL_DEVICE = "/dev/null";

function openNull(): Deno.FsFile | null {
  try {
    return Deno.openSync(NULL_DEVICE);
  } catch {
    return null;
  }
}

function readable(): boolean {
  try {
    const { state } = Deno.permissions.querySync({
      name: "read",
      path: NULL_DEVICE,
    });
    return state === "granted";
  } catch {
    return false;
  }
}

let spare: Deno.FsFile | null = readable() ? openNull() : null;
const guarded = spare !== null;

/**
 * `error.stack`, read while a descriptor is free for Deno to map it; or
 * `undefined` when none is free and the spare is gone too.
 */
export function stackOf(error: Error): string | undefined {
  if (!guarded) return error.stack;
  // One descriptor free is enough: Deno's opens for the read come one by one.
  const probe = openNull();
  if (probe !== null) {
    probe.close();
    return error.stack;
  }
  if (spare === null) return undefined;
  spare.close();
  spare = null;
  try {
    return error.stack;
  } finally {
    spare = openNull();
  }
}
