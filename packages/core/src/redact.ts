/**
 * Removing secrets from text that may end up in an error message or a log line.
 */

/** What replaces a secret. */
export const REDACTED = '[REDACTED]';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const XML_NAMED: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/**
 * The forms a secret takes when a server echoes it inside XML: `&`, `<` and `>` escaped (as any XML writer
 * does), quotes escaped too, and every special character as a decimal or hex character reference.
 */
function xmlForms(secret: string): string[] {
  if (!/[&<>"']/.test(secret)) return [];
  const minimal = secret.replace(/[&<>]/g, (c) => XML_NAMED[c] as string);
  const named = secret.replace(/[&<>"']/g, (c) => XML_NAMED[c] as string);
  const decimal = secret.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const hex = secret.replace(/[&<>"']/g, (c) => `&#x${c.charCodeAt(0).toString(16)};`);
  return [minimal, named, decimal, hex];
}

/**
 * Replaces every occurrence of each secret in `text` with `[REDACTED]`, also in its URL-encoded, base64,
 * XML-escaped (`&amp;`, `&lt;`, `&quot;`, character references) and JSON-escaped forms. Empty secrets and
 * non-strings are ignored; longer secrets are replaced first so one that contains another is removed whole.
 */
export function redactSecrets(text: string, secrets: readonly (string | undefined | null)[]): string {
  if (typeof text !== 'string' || text === '') return text;
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret === '') continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(encodeURIComponent(secret).replace(/%20/g, '+'));
    if (secret.length >= 4) forms.add(Buffer.from(secret, 'utf8').toString('base64'));
    for (const form of xmlForms(secret)) forms.add(form);
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  if (forms.size === 0) return text;
  const sorted = [...forms].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
  return text.replace(pattern, REDACTED);
}

/** Key names whose values are secrets in `key=value`, `key: value`, JSON and XML forms. */
const SECRET_KEYS = [
  'password',
  'passwd',
  'pwd',
  'pass',
  'passphrase',
  'secret',
  'client_secret',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'api_key',
  'apikey',
  'api-key',
  'private_key',
  'privatekey',
  'session_id',
  'sessionid',
  'session',
  'x-api-key',
  'x-auth-token',
  'vmware-api-session-id',
  'vmware_soap_session',
];
const KEY_ALT = SECRET_KEYS.map(escapeRegExp).join('|');
/** JSON and XML also hide header-like keys, whose values are secrets whole. */
const STRUCTURED_KEY_ALT = [...SECRET_KEYS, 'authorization', 'proxy-authorization', 'cookie', 'set-cookie']
  .map(escapeRegExp)
  .join('|');

interface Rule {
  pattern: RegExp;
  replace: (match: string, ...groups: string[]) => string;
}

const RULES: Rule[] = [
  // HTTP auth headers: keep the scheme, drop the credentials.
  {
    pattern:
      /\b((?:proxy-)?authorization\s*[:=]\s*)(?:(basic|bearer|digest|negotiate|ntlm|token)\s+)?[^\r\n]+/gi,
    replace: (_m, head: string, scheme?: string) => `${head}${scheme ? `${scheme} ` : ''}${REDACTED}`,
  },
  // Cookies, whole value.
  {
    pattern: /\b((?:set-)?cookie\s*[:=]\s*)[^\r\n]+/gi,
    replace: (_m, head: string) => `${head}${REDACTED}`,
  },
  // JSON: "password": "..." (string values only).
  {
    pattern: new RegExp(`("(?:${STRUCTURED_KEY_ALT})"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'gi'),
    replace: (_m, head: string) => `${head}"${REDACTED}"`,
  },
  // XML elements: <password>...</password>, also with a namespace prefix and CDATA sections.
  {
    pattern: new RegExp(
      `(<((?:[\\w.-]+:)?(?:${STRUCTURED_KEY_ALT}))(?:\\s[^>]*)?>)(?:<!\\[CDATA\\[[\\s\\S]*?\\]\\]>|[^<])*(</\\2\\s*>)`,
      'gi',
    ),
    replace: (_m, open: string, _name: string, close: string) => `${open}${REDACTED}${close}`,
  },
  // key=value and key: value (query strings, form bodies, headers, command lines).
  {
    pattern: new RegExp(
      `(^|[\\s?&;,({"'-])((?:${KEY_ALT})\\s*[=:]\\s*)("[^"]*"|'[^']*'|[^\\s&;,)"'<>]+)`,
      'gim',
    ),
    replace: (_m, lead: string, head: string) => `${lead}${head}${REDACTED}`,
  },
  // Command-line flags: --password secret, --token=secret.
  {
    pattern: new RegExp(`(^|\\s)(--(?:${KEY_ALT})(?:\\s+|=))("[^"]*"|'[^']*'|\\S+)`, 'gim'),
    replace: (_m, lead: string, head: string) => `${lead}${head}${REDACTED}`,
  },
  // Credentials in URLs: scheme://user:password@host.
  {
    pattern: /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*:)[^\s/?#@]+@/gi,
    replace: (_m, head: string) => `${head}${REDACTED}@`,
  },
];

/**
 * Removes credentials that follow well-known patterns: `Authorization`/`Proxy-Authorization` values (the
 * scheme is kept), `Cookie`/`Set-Cookie` values, `password=...`, `token: ...` and similar keys in
 * query strings, headers, JSON and XML (`<password>...</password>`), command-line flags
 * (`--password x`), and passwords in URLs (`ssh://root:pw@host`).
 */
export function redactPatterns(text: string): string {
  if (typeof text !== 'string' || text === '') return text;
  let out = text;
  for (const rule of RULES)
    out = out.replace(rule.pattern, rule.replace as (substring: string, ...args: unknown[]) => string);
  return out;
}

/** Applies {@link redactSecrets} with the given secrets, then {@link redactPatterns}. */
export function redact(text: string, secrets: readonly (string | undefined | null)[] = []): string {
  return redactPatterns(redactSecrets(text, secrets));
}

/** How deep {@link redactError} follows `cause` chains and walks `details`. */
const MAX_REDACT_DEPTH = 8;

/**
 * Removes the given secrets (with {@link redactSecrets}, so also their encoded forms) from an error, in
 * place: its `message`, `stack`, `backendMessage` and the strings in its `details`, and the same along its
 * `cause` chain (up to 8 deep, cycles ignored). Returns `error` itself, so `throw redactError(error, [pw])`
 * keeps its identity, class and code. Values that are not objects, and properties that cannot be written
 * (a frozen error), are left as they are. Adapters call it on whatever `connect()` throws, and the wrapped
 * adapter on whatever its methods throw, with the secrets they were given.
 */
export function redactError<E>(error: E, secrets: readonly (string | undefined | null)[]): E {
  if (!secrets.some((s) => typeof s === 'string' && s !== '')) return error;
  const seen = new Set<object>();
  let current: unknown = error;
  for (let depth = 0; depth < MAX_REDACT_DEPTH; depth++) {
    if (typeof current !== 'object' || current === null || seen.has(current)) break;
    seen.add(current);
    const target = current as Record<string, unknown>;
    for (const key of ['message', 'stack', 'backendMessage']) {
      const value = target[key];
      if (typeof value === 'string') rewrite(target, key, redactSecrets(value, secrets));
    }
    const details = target.details;
    if (typeof details === 'object' && details !== null) {
      rewrite(target, 'details', redactValue(details, secrets, 0));
    }
    current = target.cause;
  }
  return error;
}

function rewrite(target: Record<string, unknown>, key: string, value: unknown): void {
  if (target[key] === value) return;
  try {
    const own = Object.getOwnPropertyDescriptor(target, key);
    Object.defineProperty(target, key, {
      value,
      writable: own?.writable ?? true,
      enumerable: own?.enumerable ?? false,
      configurable: true,
    });
  } catch {
    // A frozen or exotic object: nothing more can be done here.
  }
}

/** A copy of `value` with the secrets removed from every string, or `value` itself when none was found. */
function redactValue(
  value: unknown,
  secrets: readonly (string | undefined | null)[],
  depth: number,
): unknown {
  if (typeof value === 'string') return redactSecrets(value, secrets);
  if (typeof value !== 'object' || value === null || depth >= MAX_REDACT_DEPTH) return value;
  if (Array.isArray(value)) {
    const out = value.map((item) => redactValue(item, secrets, depth + 1));
    return out.some((item, i) => item !== value[i]) ? out : value;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null)
    return value;
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const redacted = redactValue(item, secrets, depth + 1);
    if (redacted !== item) {
      copy ??= { ...(value as Record<string, unknown>) };
      copy[key] = redacted;
    }
  }
  return copy ?? value;
}
