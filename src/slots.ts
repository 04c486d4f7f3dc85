// How many resources' workers may start and sync at once. Every resource keeps a worker of its own; this
// only says how many of them run together, since starting all of them at once on a small machine costs
// each start two to three times its CPU (contention) and holds every one of them in memory together.
import { availableParallelism } from "node:os";

export interface Slot {
  /** Gives the slot back; a second call does nothing. */
  release(): void;
}

export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  /** Resolves with a slot once one is free, first come first served. */
  async acquire(): Promise<Slot> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        const next = this.waiting.shift();
        if (next) next();
        else this.free++;
      },
    };
  }
}

/** The cores this process may use: how many workers can run at once without waiting for one. */
export function cores(): number {
  return Math.max(1, availableParallelism());
}
