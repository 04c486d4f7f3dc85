// Writing every byte to a file descriptor, synchronously, as Go's os.File.Write does: a short write (a
// disk filling up, a pipe whose reader is slow) is continued, and EAGAIN (a descriptor its parent shared
// in non-blocking mode) is waited out. process.stdout/stderr.write queue instead, and Bun drops what is
// still queued when the process exits: the last log lines and a long --noop diff were lost that way.
import { writeSync } from "node:fs";

const EAGAIN_PAUSE_MS = 1;

export function writeFully(fd: number, bytes: Uint8Array, position: number | null = null): void {
  for (let done = 0; done < bytes.length; ) {
    let n: number;
    try {
      n = writeSync(fd, bytes, done, bytes.length - done, position === null ? null : position + done);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      Bun.sleepSync(EAGAIN_PAUSE_MS);
      continue;
    }
    if (n <= 0) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    done += n;
  }
}
