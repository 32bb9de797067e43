/**
 * Standard output as a dispatcher, shared by the client examples: `send()`
 * buffers without limit and the loop hands the bytes to `Deno.stdout` as fast
 * as it takes them, so a slow reader never blocks the loop. Senders throttle
 * themselves by reading only while {@linkcode StdoutDispatcher.pending} is
 * small.
 *
 * @module
 */

import { DispatcherWithSend, FileWrapper } from "@asyncore/asyncore";

/** Buffered bytes above which the examples stop reading from the network. */
export const STDOUT_MARK = 64 * 1024;

/** Writes raw bytes to standard output, unchanged, through the loop. */
export class StdoutDispatcher extends DispatcherWithSend {
  constructor() {
    super(new FileWrapper(Deno.stdout));
    // A file is connected from the start: there is nothing to wait for.
    this.connected = true;
  }

  /** Bytes sent but not yet handed to standard output. */
  get pending(): number {
    return this.out_buffer.length;
  }

  // Standard output is write-only.
  override readable(): boolean {
    return false;
  }

  override handle_write(): void {
    this.initiate_send();
    if (this.closing && this.out_buffer.length === 0) this.close();
  }

  /** Closes once every byte sent so far is on its way to standard output. */
  close_when_done(): void {
    this.closing = true;
    if (this.out_buffer.length === 0) this.close();
  }

  // The reader went away (a broken pipe): drop what is left so no sender
  // waits for room that will never come.
  override handle_close(): void {
    this.out_buffer = new Uint8Array(0);
    this.close();
  }
}
