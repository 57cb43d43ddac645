/**
 * A list that keeps the newest `capacity` items: a push past the capacity drops the oldest. The
 * console's memory bound for every history it shows (defects, alerts, deliveries, series).
 */
export class BoundedList<T> {
  private readonly items: T[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  /** Appends `item`; returns the item dropped to make room, if any. */
  push(item: T): T | undefined {
    this.items.push(item);
    return this.items.length > this.capacity ? this.items.shift() : undefined;
  }

  get length(): number {
    return this.items.length;
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.items];
  }

  /** Newest first. */
  newestFirst(): T[] {
    return [...this.items].reverse();
  }

  last(): T | undefined {
    return this.items[this.items.length - 1];
  }

  /** Replaces the newest item matching `match` (a bucket being filled); false when none matches. */
  updateLast(match: (item: T) => boolean, update: (item: T) => T): boolean {
    for (let i = this.items.length - 1; i >= 0; i--) {
      if (match(this.items[i]!)) {
        this.items[i] = update(this.items[i]!);
        return true;
      }
    }
    return false;
  }
}

/**
 * A map that keeps at most `capacity` keys, dropping the least recently written one: per-line,
 * per-asset and per-camera state is bounded even when ids keep appearing (a renamed camera, a
 * test run's fresh ids).
 */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Writes `key` as the most recent; returns the evicted entry when the map was full. */
  set(key: K, value: V): [K, V] | undefined {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size <= this.capacity) return undefined;
    const oldest = this.map.entries().next().value as [K, V];
    this.map.delete(oldest[0]);
    return oldest;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }

  entries(): [K, V][] {
    return [...this.map.entries()];
  }

  values(): V[] {
    return [...this.map.values()];
  }
}
