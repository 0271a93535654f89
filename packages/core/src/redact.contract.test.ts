/**
 * Redaction rule by rule: each encoded form of a secret, the spacing and case each pattern allows, what
 * is left alone, and how far `redactError` reaches into an error (its cause chain and details, with their
 * bounds). redact.test.ts has the common cases.
 */

import { describe, expect, it } from 'vitest';
import { hvkitError } from './errors/hvkit-error';
import { REDACTED, redact, redactError, redactPatterns, redactSecrets } from './redact';

describe('redactSecrets: the forms of a secret', () => {
  it('removes a secret echoed inside XML with its quotes escaped as &apos; and &quot;, or as hex references', () => {
    const secret = `it's "x"<`;
    for (const form of [
      `it&apos;s &quot;x&quot;&lt;`,
      `it&#x27;s &#x22;x&#x22;&#x3c;`,
      `it&#39;s &#34;x&#34;&#60;`,
      `it's "x"&lt;`,
    ]) {
      expect(redactSecrets(`pw=${form}!`, [secret]), form).toBe(`pw=${REDACTED}!`);
    }
  });

  it('adds no XML forms for a secret without XML specials', () => {
    expect(redactSecrets('a &amp; b', ['plain'])).toBe('a &amp; b');
  });

  it('removes the base64 form of secrets of 4 characters or more, not of shorter ones', () => {
    expect(redactSecrets(`b64 ${Buffer.from('abcd').toString('base64')}`, ['abcd'])).toBe(`b64 ${REDACTED}`);
    const short = Buffer.from('abc').toString('base64');
    expect(redactSecrets(`b64 ${short}`, ['abc'])).toBe(`b64 ${short}`);
  });

  it('returns what is not a non-empty string as it is', () => {
    expect(redactSecrets(5 as unknown as string, ['5'])).toBe(5);
    expect(redactSecrets(undefined as unknown as string, ['x'])).toBeUndefined();
    expect(redactPatterns(7 as unknown as string)).toBe(7);
    expect(redactPatterns('')).toBe('');
    expect(redact('password=x')).toBe(`password=${REDACTED}`);
  });
});

describe('redactPatterns: spacing and case', () => {
  it.each([
    ['Authorization:Basic abc', `Authorization:Basic ${REDACTED}`],
    ['AUTHORIZATION=   Bearer abc', `AUTHORIZATION=   Bearer ${REDACTED}`],
    ['authorization :NTLM abc', `authorization :NTLM ${REDACTED}`],
    ['Cookie:a=b', `Cookie:${REDACTED}`],
    ['SET-COOKIE =  a=b', `SET-COOKIE =  ${REDACTED}`],
    [
      '<Password>x</Password> and <PASSWD>y</PASSWD>',
      `<Password>${REDACTED}</Password> and <PASSWD>${REDACTED}</PASSWD>`,
    ],
    ['{"Token":"a"} {"TOKEN":"b"}', `{"Token":"${REDACTED}"} {"TOKEN":"${REDACTED}"}`],
    ['run --PASSWORD a\nrun --token=b', `run --PASSWORD ${REDACTED}\nrun --token=${REDACTED}`],
    ['x\n--secret "two words"', `x\n--secret ${REDACTED}`],
    ['line one\npassword: a\nToken= b', `line one\npassword: ${REDACTED}\nToken= ${REDACTED}`],
  ])('%j', (input, expected) => {
    expect(redactPatterns(input)).toBe(expected);
  });
});

describe('redactError', () => {
  it('changes nothing without a usable secret', () => {
    for (const secrets of [[], [''], [null, undefined], [5 as unknown as string]]) {
      const error = hvkitError('REMOTE', 'pw hunter2', { details: { a: 'hunter2' } });
      const details = error.details;
      expect(redactError(error, secrets)).toBe(error);
      expect(error.message).toBe('pw hunter2');
      expect(error.details).toBe(details);
    }
  });

  it('keeps the properties it rewrites as they were: message not enumerable, details enumerable, both writable', () => {
    const error = hvkitError('REMOTE', 'pw hunter2', { details: { a: 'hunter2' } });
    const before = Object.getOwnPropertyDescriptor(error, 'details');
    redactError(error, ['hunter2']);
    expect(Object.getOwnPropertyDescriptor(error, 'message')).toMatchObject({
      value: `pw ${REDACTED}`,
      enumerable: false,
      writable: true,
      configurable: true,
    });
    expect(Object.getOwnPropertyDescriptor(error, 'details')).toMatchObject({
      value: { a: REDACTED },
      enumerable: before?.enumerable,
      writable: true,
    });
    // A property that did not exist is added hidden and writable.
    const plain = { message: 'x hunter2', cause: undefined } as unknown as Error;
    delete (plain as { message?: string }).message;
    Object.defineProperty(plain, 'stack', { get: () => 'at hunter2', configurable: true });
    redactError(plain, ['hunter2']);
    expect(Object.getOwnPropertyDescriptor(plain, 'stack')).toMatchObject({
      value: `at ${REDACTED}`,
      enumerable: false,
      writable: true,
    });
  });

  it('follows the cause chain 8 errors deep, and stops at something that is not an object', () => {
    const chain: Error[] = [];
    let cause: unknown = 'hunter2 in a string cause';
    for (let i = 0; i < 10; i++) {
      const e: Error = new Error(`level ${9 - i} hunter2`, { cause });
      chain.unshift(e);
      cause = e;
    }
    redactError(chain[0], ['hunter2']);
    expect(chain.map((e) => e.message.endsWith(REDACTED))).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(chain[9]?.cause).toBe('hunter2 in a string cause');
  });

  it('walks plain objects and arrays in details 8 levels deep, leaves class instances and unchanged parts alone', () => {
    class Box {
      constructor(readonly v: string) {}
    }
    const bare = Object.create(null) as Record<string, unknown>;
    bare.s = 'hunter2';
    let deep: unknown = 'hunter2';
    for (let i = 0; i < 9; i++) deep = { d: deep };
    const same = { ok: 'nothing here', list: ['a', 'b'] };
    const list = ['x', 'hunter2'];
    const box = new Box('hunter2');
    const error = hvkitError('REMOTE', 'm', { details: { bare, deep, same, list, box, n: 1 } });
    redactError(error, ['hunter2']);
    const d = error.details as Record<string, unknown>;
    expect(d.bare).toEqual({ s: REDACTED });
    expect(d.list).toEqual(['x', REDACTED]);
    expect(list).toEqual(['x', 'hunter2']);
    expect(d.same).toBe(same);
    expect(d.box).toBe(box);
    expect(d.n).toBe(1);
    // details is level 0: 8 more levels are walked, the 9th string is left.
    let at = d.deep as Record<string, unknown>;
    for (let i = 0; i < 8; i++) at = at.d as Record<string, unknown>;
    expect(at).toEqual({ d: 'hunter2' });
    const shallow = hvkitError('REMOTE', 'm', { details: { a: { b: { c: 'hunter2' } } } });
    redactError(shallow, ['hunter2']);
    expect(shallow.details).toEqual({ a: { b: { c: REDACTED } } });
  });

  it('leaves details that are not objects, and errors without details, alone', () => {
    const e = new Error('hunter2') as Error & { details?: unknown; backendMessage?: unknown };
    e.details = 'hunter2';
    e.backendMessage = 42;
    redactError(e, ['hunter2']);
    expect(e.message).toBe(REDACTED);
    expect(e.details).toBe('hunter2');
    expect(e.backendMessage).toBe(42);
  });
});
