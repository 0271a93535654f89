/**
 * Fuzzing the decoder and the fault parser with truncations and mutations of the recorded vcsim responses
 * (deterministic seed): every input must give a result or an HvkitError PROTOCOL, nothing else, and every
 * truncation must be PROTOCOL.
 */

import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { prng } from '../../../../core/src/__test-utils__';
import { sample } from '../../../test/soap-server';
import { decodeSoapResponse } from './decode';
import { parseSoapFault } from './faults';

const SAMPLES = readdirSync(fileURLToPath(new URL('./__samples__/', import.meta.url)))
  .filter((f) => f.endsWith('.xml') && f !== 'vimServiceVersions.xml')
  .sort()
  .map((name) => {
    const text = sample(name);
    const method = /<(\w+)Response xmlns/.exec(text)?.[1] ?? 'RetrievePropertiesEx';
    return { name, text, method };
  });

const SNIPPETS = [
  '<',
  '>',
  '</',
  '/>',
  '&',
  '&amp;',
  '&lt',
  '&bogus;',
  '&#0;',
  '&#x110000;',
  '&#65;',
  '"',
  "'",
  '=',
  ':',
  ' ',
  '\u0000',
  '\u0007',
  '\uFFFE',
  '😀',
  'é',
  '<!DOCTYPE x [<!ENTITY e "e">]>',
  '<!ENTITY e SYSTEM "file:///etc/passwd">',
  '<!-- c -->',
  '<![CDATA[x]]>',
  '<?pi x?>',
  '<a>',
  '</a>',
  '<val xsi:type="xsd:int">',
  'xsi:type="ArrayOfVirtualDevice"',
  'xsi:type="xsd:long"',
  'XMLSchema-instance:type="VirtualDisk"',
  'xmlns:q="http://www.w3.org/2001/XMLSchema-instance" q:type="ManagedObjectReference"',
  'type="Datastore"',
  '<__proto__>x</__proto__>',
  '<_type>x</_type>',
  '<propSet><name>__proto__</name><val xsi:type="xsd:string">p</val></propSet>',
  '<objects><obj type="VirtualMachine">vm-0</obj></objects>',
  '<token>t1</token>',
  '99999999999999999999999',
  '-1',
  'true',
  '<soapenv:Fault><faultcode>x</faultcode></soapenv:Fault>',
  '<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>',
];

type Mutator = (text: string, rand: () => number) => string;

const at = (text: string, rand: () => number) => Math.floor(rand() * (text.length + 1));
const pick = <T>(list: readonly T[], rand: () => number): T => list[Math.floor(rand() * list.length)] as T;

const MUTATORS: readonly Mutator[] = [
  // Replace one character.
  (t, r) => {
    const i = at(t, r);
    return t.slice(0, i) + pick(SNIPPETS, r).charAt(0) + t.slice(i + 1);
  },
  // Insert a snippet.
  (t, r) => {
    const i = at(t, r);
    return t.slice(0, i) + pick(SNIPPETS, r) + t.slice(i);
  },
  // Delete a range.
  (t, r) => {
    const i = at(t, r);
    return t.slice(0, i) + t.slice(i + 1 + Math.floor(r() * 64));
  },
  // Duplicate a range.
  (t, r) => {
    const i = at(t, r);
    const j = Math.min(t.length, i + 1 + Math.floor(r() * 200));
    return t.slice(0, j) + t.slice(i, j) + t.slice(j);
  },
  // Swap two ranges.
  (t, r) => {
    const [a, b] = [at(t, r), at(t, r)].sort((x, y) => x - y) as [number, number];
    const n = Math.min(32, Math.floor(r() * 32), b - a);
    return t.slice(0, a) + t.slice(b, b + n) + t.slice(a + n, b) + t.slice(a, a + n) + t.slice(b + n);
  },
  // Change a tag name's case (mismatched tags), or an attribute quote.
  (t, r) => {
    const i = t.indexOf('<', at(t, r));
    if (i < 0) return t;
    return t.slice(0, i + 1) + t.charAt(i + 1).toUpperCase() + t.slice(i + 2).replace('"', "'");
  },
];

/** Runs `fn`; anything but a result or a PROTOCOL HvkitError fails the test. Returns the outcome. */
function outcome(fn: () => unknown, input: string, what: string): 'ok' | 'protocol' {
  try {
    fn();
    return 'ok';
  } catch (error) {
    if (HvkitError.isInstance(error, 'PROTOCOL')) return 'protocol';
    throw new Error(`${what} threw ${String(error)} for input ${JSON.stringify(input.slice(0, 300))}`);
  }
}

describe('fuzz: decoder and fault parser', () => {
  it('every truncation of every sample is PROTOCOL', () => {
    const rand = prng(0x5eed_0001);
    let count = 0;
    for (const { text, method } of SAMPLES) {
      const end = text.trimEnd().length;
      // Every length for small samples, 400 random lengths for the big ones.
      const lengths =
        end <= 1600 ? [...Array(end).keys()] : Array.from({ length: 400 }, () => Math.floor(rand() * end));
      for (const n of lengths) {
        const input = text.slice(0, n);
        expect(outcome(() => decodeSoapResponse(input, method), input, 'decodeSoapResponse')).toBe(
          'protocol',
        );
        expect(outcome(() => parseSoapFault(input), input, 'parseSoapFault')).toBe('protocol');
        count++;
      }
    }
    expect(count).toBeGreaterThan(5_000);
  });

  it('12,000 mutated samples give results or PROTOCOL only', () => {
    const rand = prng(0x5eed_0002);
    const tally = { ok: 0, protocol: 0 };
    const N = 12_000;
    for (let k = 0; k < N; k++) {
      const { text, method } = pick(SAMPLES, rand);
      let input = text;
      const rounds = 1 + Math.floor(rand() * 3);
      for (let m = 0; m < rounds; m++) input = pick(MUTATORS, rand)(input, rand);
      tally[outcome(() => decodeSoapResponse(input, method), input, 'decodeSoapResponse')]++;
      outcome(() => parseSoapFault(input), input, 'parseSoapFault');
      outcome(
        () => decodeSoapResponse(input, method, { properties: new Set(['name', 'config.hardware.device']) }),
        input,
        'decodeSoapResponse(properties)',
      );
    }
    expect(tally.ok + tally.protocol).toBe(N);
    // Most mutations break the document; some (a changed digit, a swapped text run) legitimately decode.
    expect(tally.protocol).toBeGreaterThan(N / 2);
    expect(tally.ok).toBeGreaterThan(0);
  });
});
