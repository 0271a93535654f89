import { describe, expect, it } from 'vitest';
import { noopLogger } from './logger';

describe('loggers', () => {
  it('noopLogger accepts every level', () => {
    expect(() => {
      noopLogger.debug('a');
      noopLogger.info('b', { x: 1 });
      noopLogger.warn('c');
      noopLogger.error('d');
    }).not.toThrow();
    expect(Object.isFrozen(noopLogger)).toBe(true);
  });
});
