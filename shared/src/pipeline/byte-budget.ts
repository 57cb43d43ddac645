/**
 * A bound on memory held by work in flight, in bytes: `acquire(n)` waits until `n` more fit
 * under the limit. One request larger than the whole limit is let through alone (it waits until
 * nothing else is held), so no input can wait forever. Waiters are served in arrival order.
 */
export interface ByteBudget {
  acquire(bytes: number): Promise<void>;
  release(bytes: number): void;
  readonly held: number;
}

export function createByteBudget(limit: number): ByteBudget {
  if (!(limit > 0)) throw new RangeError(`byte budget must be > 0, got ${limit}`);
  let held = 0;
  const waiting: { bytes: number; grant: () => void }[] = [];
  const fits = (bytes: number) => held === 0 || held + bytes <= limit;
  const pump = () => {
    while (waiting.length > 0 && fits(waiting[0]!.bytes)) {
      const w = waiting.shift()!;
      held += w.bytes;
      w.grant();
    }
  };
  return {
    acquire(bytes) {
      if (waiting.length === 0 && fits(bytes)) {
        held += bytes;
        return Promise.resolve();
      }
      return new Promise<void>((grant) => waiting.push({ bytes, grant }));
    },
    release(bytes) {
      held = Math.max(0, held - bytes);
      pump();
    },
    get held() {
      return held;
    },
  };
}
