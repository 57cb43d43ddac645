/**
 * Credential scrubbing for log lines and messages. Free of pino so that deploy/local (stack
 * messages) and the logger share one rule for what a URL may show.
 */

/** What a password inside a URL becomes. `*` needs no percent-encoding in a URL's userinfo, `[redacted]` would (`%5Bredacted%5D`). */
export const URL_PASSWORD_MASK = '***';

/**
 * What follows `scheme://` when it holds a password: `user:password@`. The password runs greedily
 * to the last `@` of the token (up to whitespace or a quote), across `/` too: a raw, un-encoded
 * password may hold `/` or `@`, and stopping at either would leave its tail in the line. The price
 * is over-masking a rare `http://host:8080/path@x` as `http://host:***@x`, which loses a path,
 * never a secret. A JSON escape (`\"`, `\\`) is consumed as a pair, so a serialized line is
 * matched like a plain message. Each alternation's branches are disjoint: no exponential
 * backtracking. Sticky: it is tried only right after a `://` (see {@link redactUrlsIn}).
 */
const USERINFO = /((?:[^\s:/@"\\]|\\.)*):(?:[^\s"\\]|\\.)*@/y;

/** A character of a URL scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )). */
const SCHEME_CHAR = /[A-Za-z0-9+.-]/;

/**
 * The URL without its password, for messages and logs: `redis://user:pass@host:6380` becomes
 * `redis://user:***@host:6380`. The user name stays (it tells which account failed). The text
 * scrubbing runs on the result too, so a URL that does not parse, or parses a raw password as a
 * port and a path (`redis://u:12/34@host`), still has it masked.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = URL_PASSWORD_MASK;
    return redactUrlsIn(u.toString().replace(/\/$/, ''));
  } catch {
    return redactUrlsIn(url);
  }
}

/**
 * Masks the password of every `scheme://user:password@` in a free text (an error message, a
 * stack, a serialized log line). Finds each `://` with indexOf and tries {@link USERINFO} only
 * there, so a line costs linear time even when it carries a long blob (a single regex with the
 * scheme in it retries at every letter of a base64 run).
 */
export function redactUrlsIn(text: string): string {
  let at = text.indexOf('://');
  if (at === -1) return text;
  let out = '';
  let from = 0;
  while (at !== -1) {
    const start = at + 3;
    USERINFO.lastIndex = start;
    const m = at > 0 && SCHEME_CHAR.test(text[at - 1]!) ? USERINFO.exec(text) : null;
    if (m) {
      out += `${text.slice(from, start)}${m[1]}:${URL_PASSWORD_MASK}@`;
      from = USERINFO.lastIndex;
      at = text.indexOf('://', from);
    } else {
      at = text.indexOf('://', start);
    }
  }
  return out + text.slice(from);
}

/** The password of a URL (decoded), to hand to a logger's `secrets`; undefined when it has none or does not parse. */
export function urlPassword(url: string): string | undefined {
  try {
    const password = new URL(url).password;
    return password === '' ? undefined : decodeURIComponent(password);
  } catch {
    return undefined;
  }
}

/**
 * Keys whose value is a credential, matched case-insensitively against the end of the key so
 * that prefixed names are caught too (`saslPassword`, `REDIS_PASSWORD`, `sessionToken`,
 * `clientSecret`): kafkajs `sasl` (`password`; AWS IAM `secretAccessKey`, `sessionToken`), its
 * `ssl` (`passphrase`), ioredis options (`password`), HTTP headers (`authorization`). A suffix and
 * not a substring, so `maxTokens` or `passed` keep their values.
 */
export const SECRET_KEY = /(?:password|passwd|passphrase|secret|token|secretaccesskey|privatekey|apikey|api_key|authorization|credentials?)$/i;

/** A key of a serialized JSON object: always right after `{` or `,` in pino's compact output (inside a string every `"` is escaped, so this never matches there). */
const JSON_KEY = /[{,]"((?:[^"\\]|\\.)*)":/g;

/** Index just past the JSON value starting at `i` (a string, an object or array, or a bare literal). */
function jsonValueEnd(s: string, i: number): number {
  const first = s[i];
  if (first === '"') {
    for (let j = i + 1; j < s.length; j++) {
      if (s[j] === '\\') j++;
      else if (s[j] === '"') return j + 1;
    }
    return s.length;
  }
  if (first === '{' || first === '[') {
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      const c = s[j];
      if (c === '"') j = jsonValueEnd(s, j) - 1;
      else if (c === '{' || c === '[') depth++;
      else if ((c === '}' || c === ']') && --depth === 0) return j + 1;
    }
    return s.length;
  }
  let j = i;
  while (j < s.length && s[j] !== ',' && s[j] !== '}' && s[j] !== ']') j++;
  return j;
}

/**
 * Replaces the value of every {@link SECRET_KEY} key, at any depth, in a serialized JSON line
 * with `"<mask>"` (a whole object or array too). One linear pass over the text: pino's own
 * `redact` paths have no recursive wildcard and cost 30 to 60 times a plain line with the
 * `*.*.*.key` paths needed to reach kafkajs and ioredis configs (measured: 220 µs against 4 µs).
 */
export function redactJsonKeys(line: string, mask: string): string {
  let out = '';
  let from = 0;
  JSON_KEY.lastIndex = 0;
  for (let m = JSON_KEY.exec(line); m; m = JSON_KEY.exec(line)) {
    if (!SECRET_KEY.test(m[1]!)) continue;
    const start = JSON_KEY.lastIndex;
    const end = jsonValueEnd(line, start);
    out += `${line.slice(from, start)}${JSON.stringify(mask)}`;
    from = end;
    // Nothing inside a redacted value needs looking at.
    JSON_KEY.lastIndex = end;
  }
  return from === 0 ? line : out + line.slice(from);
}

/** A PEM private key (a TLS client key in an `ssl` config) in a serialized line, whatever its key; the `\n`s are JSON escapes there. */
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:(?!-----END)(?:[^"\\]|\\.))*(?:-----END [A-Z0-9 ]*PRIVATE KEY-----)?/g;

/** Masks PEM private keys in a text. */
export function redactPrivateKeys(text: string, mask: string): string {
  return text.includes('PRIVATE KEY-----') ? text.replace(PEM_PRIVATE_KEY, mask) : text;
}

/**
 * Secrets shorter than this are not scrubbed by value: masking every `ab` in every line would
 * wreck the logs and tell an attacker the secret anyway. Key paths and URL masking still apply.
 */
export const MIN_SECRET_LENGTH = 4;

/**
 * A function that replaces every occurrence of the given secret values in a text, in the forms
 * they take in a log line: raw, JSON-escaped (a `"` or `\` inside the secret) and percent-encoded
 * (the secret inside a URL), each with `mask`.
 */
export function secretScrubber(secrets: readonly string[], mask: string): (text: string) => string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    forms.add(secret);
    forms.add(JSON.stringify(secret).slice(1, -1));
    forms.add(encodeURIComponent(secret));
  }
  // Longest first, so a form that contains another is replaced whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const form of ordered) if (out.includes(form)) out = out.split(form).join(mask);
    return out;
  };
}
