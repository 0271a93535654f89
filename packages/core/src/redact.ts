/**
 * Removing secrets from text that may end up in an error message or a log line.
 */

/** What replaces a secret. */
export const REDACTED = '[REDACTED]';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Replaces every occurrence of each secret in `text` with `[REDACTED]`, also in its URL-encoded and
 * base64 forms. Empty secrets and non-strings are ignored; longer secrets are replaced first so one that
 * contains another is removed whole.
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
  // XML elements: <password>...</password>, also with a namespace prefix.
  {
    pattern: new RegExp(`(<((?:[\\w.-]+:)?(?:${STRUCTURED_KEY_ALT}))(?:\\s[^>]*)?>)[^<]*(</\\2\\s*>)`, 'gi'),
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
