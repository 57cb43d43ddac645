import { parseBrokerList } from '../kafka/client.js';

/** A configuration that failed validation: one plain line per bad value. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

/**
 * Reads typed values from an environment object, collecting every problem instead of stopping at
 * the first, so an operator fixes a bad deployment in one round. Services' config.ts modules are
 * the only callers that pass `process.env`.
 */
export class EnvReader {
  private readonly problems: string[] = [];
  constructor(private readonly env: Readonly<Record<string, string | undefined>>) {}

  private raw(name: string): string | undefined {
    const v = this.env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  }

  string(name: string, fallback: string, pattern?: RegExp, rule?: string): string {
    const v = this.raw(name) ?? fallback;
    if (pattern && !pattern.test(v)) this.problems.push(`${name}: must be ${rule ?? `like ${pattern.source}`}, got "${v}"`);
    return v;
  }

  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || n < min || n > max) {
      this.problems.push(`${name}: must be an integer from ${min} to ${max}, got "${v}"`);
      return fallback;
    }
    return n;
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) {
      this.problems.push(`${name}: must be a number from ${min} to ${max}, got "${v}"`);
      return fallback;
    }
    return n;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      this.problems.push(`${name}: must be one of ${allowed.join(', ')}, got "${v}"`);
      return fallback;
    }
    return v as T;
  }

  brokers(name: string, fallback: string): string[] {
    const v = this.raw(name) ?? fallback;
    try {
      return parseBrokerList(v);
    } catch (err) {
      this.problems.push(`${name}: ${(err as Error).message}`);
      return [];
    }
  }

  url(name: string, fallback: string, schemes: readonly string[]): string {
    const v = this.raw(name) ?? fallback;
    try {
      const u = new URL(v);
      if (!schemes.includes(u.protocol.replace(/:$/, ''))) throw new Error(`scheme must be ${schemes.join(' or ')}`);
    } catch (err) {
      // Never echo the value: a URL may hold a password.
      this.problems.push(`${name}: must be a ${schemes.join('/')} URL (${(err as Error).message})`);
    }
    return v;
  }

  /** Adds a problem found by a cross-field check ("A must be lower than B"). */
  check(ok: boolean, problem: string): void {
    if (!ok) this.problems.push(problem);
  }

  /** Throws a ConfigError listing every problem, if any. */
  done(): void {
    if (this.problems.length > 0) throw new ConfigError([...this.problems]);
  }
}
