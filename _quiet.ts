// Letting go of what may already be gone: a close that may find the resource
// closed, a promise whose failure nobody is left to hear.

/** Closes `resource`, which may be closed already (closing is idempotent). */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // already closed
  }
}

/** A no-op, for a rejection (or result) that no one needs. */
export function ignore(): void {}
