import type { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { sample } from '../../../test/soap-server';
import { parseSoapFault } from './faults';

describe('parseSoapFault', () => {
  it('returns undefined for a non-fault response', () => {
    expect(parseSoapFault(sample('logout.xml'))).toBeUndefined();
  });

  it('reads a fault whatever the response element, within a size bound', () => {
    const body = sample('fault-invalid-argument.xml');
    expect(parseSoapFault(body)?.faultType).toBe('InvalidArgument');
    expect(parseSoapFault(body, { maxBytes: 1_000_000 })?.faultcode).toBe('ServerFaultCode');
    let error: unknown;
    try {
      parseSoapFault(body, { maxBytes: 10 });
    } catch (e) {
      error = e;
    }
    expect((error as HvkitError).code).toBe('PROTOCOL');
    expect(parseSoapFault(sample('current-time.xml'))).toBeUndefined();
  });
});
