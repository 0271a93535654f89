/**
 * Keeping error text short and printable: values echoed into messages are truncated with a marker, and
 * server text loses its terminal escapes and control characters before it reaches a message or a log.
 */

import { redactPatterns } from '../redact';

/** Longest `message` and `backendMessage` of an HvkitError, marker included (characters). */
export const MAX_MESSAGE_LENGTH = 2000;

/** Longest value {@link quoteForMessage} echoes before truncating it (characters, quotes excluded). */
export const MAX_ECHO_LENGTH = 200;

/**
 * Shortens `text` to at most `maxChars` characters, the marker `…[truncated, N more characters]` included,
 * without splitting a surrogate pair. Text that fits is returned as it is. When `text` is itself the start
 * of a longer text, `totalLength` (that text's length) makes the marker count what was dropped before.
 *
 * @throws TypeError when `maxChars` is not an integer of at least 40 (room for the marker).
 */
export function truncateText(text: string, maxChars: number, totalLength: number = text.length): string {
  if (!Number.isInteger(maxChars) || maxChars < 40) {
    throw new TypeError(`truncateText: maxChars must be an integer >= 40, got ${String(maxChars)}.`);
  }
  const total = Math.max(totalLength, text.length);
  if (total <= maxChars) return text;
  // The marker's length depends on the count it shows; size it for the largest count possible.
  let keep = Math.min(text.length, maxChars - marker(total).length);
  if (keep > 0 && isHighSurrogate(text.charCodeAt(keep - 1))) keep--;
  return `${text.slice(0, keep)}${marker(total - keep)}`;
}

function marker(omitted: number): string {
  return `…[truncated, ${omitted} more characters]`;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * A value as a message quotes it: JSON-quoted (so quotes and control characters are escaped), at most
 * `maxChars` characters of it, followed by `…[truncated, N more characters]` when it was longer.
 *
 * @example
 * `No guest matches name ${quoteForMessage(name)}.` // name "web-1", or name "aaaa…"…[truncated, 99800 more characters]
 */
export function quoteForMessage(value: unknown, maxChars: number = MAX_ECHO_LENGTH): string {
  const text = String(value);
  if (text.length <= maxChars) return JSON.stringify(text);
  let keep = maxChars;
  if (isHighSurrogate(text.charCodeAt(keep - 1))) keep--;
  return `${JSON.stringify(text.slice(0, keep))}${marker(text.length - keep)}`;
}

/* biome-ignore-start lint/suspicious/noControlCharactersInRegex: these patterns exist to find control characters */
/** ANSI/VT escape sequences: CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL` or `ESC \`), and two-byte escapes. */
const ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-_]?/g;
/** Line breaks and tabs: each run becomes one space. */
const BREAKS = /[\t\n\v\f\r\u0085\u2028\u2029]+/g;
/** Other C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a terminal shows. */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
/* biome-ignore-end lint/suspicious/noControlCharactersInRegex: see above */

/**
 * Makes text printable on one line: removes terminal escape sequences (colours, titles, cursor moves),
 * turns line breaks and tabs into single spaces, and removes other control characters and bidirectional
 * overrides. Server text goes through this before it lands in a message, so it cannot rewrite a terminal
 * or forge log lines.
 */
export function stripControlCharacters(text: string): string {
  if (typeof text !== 'string' || text === '') return text;
  return text.replace(ESCAPES, '').replace(BREAKS, ' ').replace(CONTROLS, '');
}

/** Longest secret a cut before redaction cannot split: text is cut this much past the limit first. */
const REDACTION_SLACK = 1024;

/**
 * What every message and backend message goes through: cut (generously) before any work so a 4 MiB server
 * message costs no more than a short one, terminal escapes and control characters removed, secrets that
 * follow well-known patterns removed, then truncated to `max` with a marker.
 */
export function cleanErrorText(text: string, max: number = MAX_MESSAGE_LENGTH): string {
  const input = typeof text === 'string' ? text : String(text);
  const head = input.length > max + REDACTION_SLACK ? input.slice(0, max + REDACTION_SLACK) : input;
  const clean = redactPatterns(stripControlCharacters(head));
  return truncateText(clean, max, clean.length + (input.length - head.length));
}
