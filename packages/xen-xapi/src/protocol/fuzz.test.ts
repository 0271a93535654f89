/**
 * Fuzz test of both decoders: 12,000 seeded inputs each (mutations of valid XAPI replies: byte flips,
 * truncations, duplicated and spliced slices, hostile insertions). Every input must decode or fail with an
 * HvkitError `PROTOCOL`; nothing else may escape, and nothing may hang.
 */

import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { prng } from '../../../core/src/__test-utils__';
import { JSON_MAX_DEPTH, parseXapiJson, parseXapiJsonText } from './json';
import { decodeXmlRpcResponse, decodeXmlRpcValue, encodeXmlRpcResponse } from './xmlrpc';

const INSERTS = [
  '<',
  '>',
  '&',
  '&amp;',
  '&#0;',
  '&#x10FFFF;',
  '<!DOCTYPE x [<!ENTITY a "b">]>',
  '&a;',
  ']]>',
  '<![CDATA[x]]>',
  '<value>',
  '</value>',
  '<struct>',
  '<i8>99999999999999999999</i8>',
  '<double>nan</double>',
  '<dateTime.iso8601>2020</dateTime.iso8601>',
  '"',
  '\\',
  '\\u12',
  'NaN',
  '-Infinity',
  '1e999',
  '{',
  '[',
  '}',
  ']',
  ',',
  ':',
  '\u0000',
  '\ud800',
  '__proto__',
];

function mutate(seedText: string, rnd: () => number): string {
  let s = seedText;
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rnd() * (s.length + 1));
    switch (Math.floor(rnd() * 5)) {
      case 0:
        s = s.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 128)) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at);
        break;
      case 2:
        s = s.slice(0, at) + (INSERTS[Math.floor(rnd() * INSERTS.length)] as string) + s.slice(at);
        break;
      case 3: {
        const len = Math.floor(rnd() * 40);
        s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at);
        break;
      }
      default: {
        const from = Math.floor(rnd() * s.length);
        s = s.slice(0, at) + s.slice(from, from + Math.floor(rnd() * 60)) + s.slice(at + 30);
      }
    }
  }
  return s;
}

function expectTyped(fn: () => unknown): 'ok' | 'error' {
  try {
    fn();
    return 'ok';
  } catch (error) {
    if (!HvkitError.isInstance(error, 'PROTOCOL')) throw error;
    return 'error';
  }
}

const XML_SEEDS = [
  encodeXmlRpcResponse({
    Status: 'Success',
    Value: {
      'OpaqueRef:1': {
        name_label: 'vm',
        VCPUs_max: 2,
        memory_static_max: 2147483648,
        is_a_template: false,
        tags: ['a', 'b'],
        snapshot_time: new Date(0),
      },
    },
  }),
  encodeXmlRpcResponse({
    Status: 'Failure',
    ErrorDescription: ['VM_BAD_POWER_STATE', 'OpaqueRef:1', 'halted', 'running'],
  }),
  '<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value><array><data><value><i8>12</i8></value><value><double>1.5</double></value><value><dateTime.iso8601>20201210T17:19:20Z</dateTime.iso8601></value><value><base64>aGk=</base64></value><value><nil/></value></data></array></value></member></struct></value></param></params></methodResponse>',
];
const JSON_SEEDS = [
  '{"jsonrpc":"2.0","result":{"OpaqueRef:1":{"name_label":"vm","VCPUs_max":2,"memory_static_max":123456789012345678901,"util":NaN,"other":-Infinity,"tags":["a"],"m":{"k":"v"}}},"id":1}',
  '{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["OpaqueRef:x"]},"id":2}',
  '{"result":null,"error":["HANDLE_INVALID","VM","OpaqueRef:1"],"id":3}',
  // Plain JSON (what JSON.parse takes): nested maps, escapes, a __proto__ key, a 15-digit int.
  '{"jsonrpc":"2.0","result":{"OpaqueRef:2":{"name_label":"v\\u00e9m \\"2\\"","VCPUs_params":{"weight":"256"},"memory_target":536870912000000,"__proto__":{"x":[1,2.5e3,-0,true,null]},"tags":[]}},"id":4}',
];

describe('decoder fuzzing (seeded)', () => {
  it('XML-RPC: 12,000 mutated replies decode or fail with PROTOCOL', () => {
    const rnd = prng(0x5eed);
    const tally = { ok: 0, error: 0 };
    for (let i = 0; i < 12_000; i++) {
      const input = mutate(XML_SEEDS[i % XML_SEEDS.length] as string, rnd);
      tally[expectTyped(() => (i % 7 === 0 ? decodeXmlRpcValue(input) : decodeXmlRpcResponse(input)))]++;
    }
    expect(tally.ok + tally.error).toBe(12_000);
    expect(tally.error).toBeGreaterThan(1000);
    expect(tally.ok).toBeGreaterThan(100);
  });

  it('JSON: 12,000 mutated replies parse or fail with PROTOCOL', () => {
    const rnd = prng(0xbeef);
    const tally = { ok: 0, error: 0 };
    for (let i = 0; i < 12_000; i++) {
      const input = mutate(JSON_SEEDS[i % JSON_SEEDS.length] as string, rnd);
      const outcome = expectTyped(() => parseXapiJson(input));
      tally[outcome]++;
      // The JSON.parse fast path and the module's own parser agree: the same value, or both refuse.
      const own = () => parseXapiJsonText(input, JSON_MAX_DEPTH, undefined);
      if (outcome === 'ok') expect(parseXapiJson(input)).toStrictEqual(own());
      else expect(own).toThrow(HvkitError);
    }
    expect(tally.ok + tally.error).toBe(12_000);
    expect(tally.error).toBeGreaterThan(1000);
    expect(tally.ok).toBeGreaterThan(100);
  });

  it('deep nesting is refused, not a stack overflow', () => {
    expect(expectTyped(() => parseXapiJson('['.repeat(100_000)))).toBe('error');
    const deep = `<methodResponse><params><param>${'<value><array><data>'.repeat(5000)}`;
    expect(expectTyped(() => decodeXmlRpcResponse(deep))).toBe('error');
  });
});
