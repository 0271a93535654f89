import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { parseXapiJson, stringifyXapiJson } from './json';
import { normaliseRecord } from './values';
import { formatXapiDate, parseXapiDate, XapiFloat } from './wire';
import {
  decodeXmlRpcCall,
  decodeXmlRpcResponse,
  decodeXmlRpcValue,
  encodeXmlRpcCall,
  encodeXmlRpcResponse,
} from './xmlrpc';

const ok = (inner: string) =>
  `<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>${inner}</member></struct></value></param></params></methodResponse>`;

describe('XML-RPC decoding, XAPI style', () => {
  it('untyped values are strings, untrimmed; an empty value is ""', () => {
    expect(decodeXmlRpcValue('<value> 2 </value>')).toBe(' 2 ');
    expect(decodeXmlRpcValue('<value/>')).toBe('');
    expect(decodeXmlRpcValue('<value>  <string>x</string>  </value>')).toBe('x');
  });

  it('64-bit ints beyond 2^53 stay exact (digit strings), small ones are numbers', () => {
    expect(decodeXmlRpcValue('<value><i8>9223372036854775807</i8></value>')).toBe('9223372036854775807');
    expect(decodeXmlRpcValue('<value><int>-12</int></value>')).toBe(-12);
  });

  it('doubles include OCaml nan/inf; booleans are 0/1', () => {
    expect(decodeXmlRpcValue('<value><double>nan</double></value>')).toBeNaN();
    expect(decodeXmlRpcValue('<value><double>-inf</double></value>')).toBe(Number.NEGATIVE_INFINITY);
    expect(decodeXmlRpcValue('<value><boolean>1</boolean></value>')).toBe(true);
    expect(() => decodeXmlRpcValue('<value><boolean>yes</boolean></value>')).toThrow(HvkitError);
  });

  it.each([
    ['20201210T17:19:20Z', '2020-12-10T17:19:20.000Z'],
    ['20201210T17:19:20', '2020-12-10T17:19:20.000Z'],
    ['20201210T171920Z', '2020-12-10T17:19:20.000Z'],
    ['2020-12-10T17:19:20Z', '2020-12-10T17:19:20.000Z'],
    ['2020-12-10T17:19:20.250+01:00', '2020-12-10T16:19:20.250Z'],
  ])('date-time %s', (text, iso) => {
    expect(
      (
        decodeXmlRpcValue(`<value><dateTime.iso8601>${text}</dateTime.iso8601></value>`) as Date
      ).toISOString(),
    ).toBe(iso);
    expect(parseXapiDate(text)?.toISOString()).toBe(iso);
  });

  it('the epoch is "unset": null for a datetime field', () => {
    expect(parseXapiDate('19700101T00:00:00Z')).toBeNull();
    expect(normaliseRecord('VM', { snapshot_time: '19700101T00:00:00Z' }).snapshot_time).toBeNull();
    expect(formatXapiDate(new Date(Date.UTC(2020, 11, 10, 17, 19, 20)))).toBe('20201210T17:19:20Z');
  });

  it('structs, arrays, nil; a DOCTYPE is refused', () => {
    const v = decodeXmlRpcResponse(
      ok(
        '<value><struct><member><name>__proto__</name><value><array><data><value>a</value><value><nil/></value></data></array></value></member></struct></value>',
      ),
    );
    expect(v).toEqual({ value: { Status: 'Success', Value: { ['__proto__']: ['a', null] } } });
    expect(Object.getPrototypeOf((v as { value: { Value: object } }).value.Value)).toBe(Object.prototype);
    expect(() => decodeXmlRpcResponse('<!DOCTYPE a [<!ENTITY x "y">]><methodResponse/>')).toThrow(/DOCTYPE/);
  });

  it('calls round-trip: strings and ints typed as <string>, floats as <double>', () => {
    const xml = encodeXmlRpcCall('event.from', ['OpaqueRef:s', ['vm'], '', new XapiFloat(60), 2147483648]);
    expect(xml).toContain('<double>60</double>');
    expect(xml).toContain('<string>2147483648</string>');
    expect(decodeXmlRpcCall(xml)).toEqual({
      method: 'event.from',
      params: ['OpaqueRef:s', ['vm'], '', 60, '2147483648'],
    });
    expect(decodeXmlRpcResponse(encodeXmlRpcResponse({ Status: 'Success', Value: 5 }))).toEqual({
      value: { Status: 'Success', Value: '5' },
    });
  });
});

describe('tolerant JSON', () => {
  it('accepts bare NaN and ±Infinity; keeps huge integers exact; own __proto__ keys', () => {
    const v = parseXapiJson(
      '{"a":NaN,"b":Infinity,"c":-Infinity,"d":123456789012345678901,"__proto__":{"x":1}}',
    ) as Record<string, unknown>;
    expect(v.a).toBeNaN();
    expect(v.b).toBe(Number.POSITIVE_INFINITY);
    expect(v.c).toBe(Number.NEGATIVE_INFINITY);
    expect(v.d).toBe('123456789012345678901');
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
  });

  it('plain JSON (the JSON.parse path) keeps 16-digit ints exact, __proto__ keys own and nesting bounded', () => {
    expect(parseXapiJson('{"a":9007199254740993,"b":9007199254740991,"c":[1e3]}')).toStrictEqual({
      a: '9007199254740993',
      b: 9007199254740991,
      c: [1000],
    });
    const v = parseXapiJson('{"__proto__":{"polluted":true},"m":{"k":"v"}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const nested = (n: number) => `${'[{"a":'.repeat(n)}1${'}]'.repeat(n)}`;
    expect(() => parseXapiJson(nested(32))).not.toThrow(); // 64 levels
    expect(() => parseXapiJson(`[${nested(32)}]`)).toThrow(
      expect.objectContaining({
        code: 'PROTOCOL',
        message: expect.stringContaining('nesting deeper than 64'),
      }),
    );
    expect(() => parseXapiJson('[[1]]', { maxDepth: 1 })).toThrow(
      expect.objectContaining({ code: 'PROTOCOL' }),
    );
  });

  it('writes bigints, NaN and dates the way XAPI does', () => {
    expect(
      stringifyXapiJson({
        a: 2n ** 64n,
        b: new XapiFloat(Number.NaN),
        c: new Date(Date.UTC(2020, 0, 2, 3, 4, 5)),
      }),
    ).toBe('{"a":18446744073709551616,"b":NaN,"c":"20200102T03:04:05Z"}');
  });

  it.each(['', '{', '{"a" 1}', '[1,]', 'nul', '"\\x"', '1 2', '{"a":1}}'])('%j is PROTOCOL', (text) => {
    expect(() => parseXapiJson(text)).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
  });
});

describe('values are normalised by field type, not by transport', () => {
  const xml = {
    VCPUs_max: '2',
    memory_static_max: '2147483648',
    is_a_template: false,
    resident_on: 'OpaqueRef:NULL',
    snapshot_of: '',
    VCPUs_params: { weight: '256' },
  };
  const json = {
    VCPUs_max: 2,
    memory_static_max: 2147483648,
    is_a_template: false,
    resident_on: 'OpaqueRef:NULL',
    snapshot_of: '',
    VCPUs_params: { weight: '256' },
  };
  it('the same VM record from both wires is the same', () => {
    const a = normaliseRecord('VM', xml);
    expect(a).toEqual(normaliseRecord('VM', json));
    expect(a).toMatchObject({
      VCPUs_max: 2,
      memory_static_max: 2147483648,
      resident_on: null,
      snapshot_of: null,
      tags: [],
    });
  });
  it('an int beyond 2^53 becomes a bigint; a float map keeps string keys', () => {
    expect(normaliseRecord('VM', { memory_static_max: '18446744073709551615' }).memory_static_max).toBe(
      18446744073709551615n,
    );
    expect(
      normaliseRecord('VM_metrics', { VCPUs_utilisation: { '0': 'nan', '1': 0.5 } }).VCPUs_utilisation,
    ).toEqual({ '0': Number.NaN, '1': 0.5 });
  });
  it('a value that cannot be of its type is PROTOCOL', () => {
    expect(() => normaliseRecord('VM', { VCPUs_max: 'two' })).toThrow(
      expect.objectContaining({ code: 'PROTOCOL' }),
    );
  });
});
