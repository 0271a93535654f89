import { describe, expect, it, vi } from 'vitest';
import { createConsoleLogger, noopLogger } from './logger';

function fakeConsole() {
  return { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() };
}

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

  it('console logger drops debug and info by default', () => {
    const out = fakeConsole();
    const logger = createConsoleLogger({ console: out });
    logger.debug('d');
    logger.info('i');
    logger.warn('w', { guest: 'g1' });
    logger.error('e');
    expect(out.debug).not.toHaveBeenCalled();
    expect(out.info).not.toHaveBeenCalled();
    expect(out.warn).toHaveBeenCalledWith('[hvkit] w', { guest: 'g1' });
    expect(out.error).toHaveBeenCalledWith('[hvkit] e');
  });

  it('honours the level and prefix', () => {
    const out = fakeConsole();
    const logger = createConsoleLogger({ console: out, level: 'debug', prefix: '' });
    logger.debug('d', { a: 1 });
    logger.info('i');
    expect(out.debug).toHaveBeenCalledWith('d', { a: 1 });
    expect(out.info).toHaveBeenCalledWith('i');

    const quiet = fakeConsole();
    const silent = createConsoleLogger({ console: quiet, level: 'silent' });
    silent.error('e');
    expect(quiet.error).not.toHaveBeenCalled();

    const errorsOnly = fakeConsole();
    const l = createConsoleLogger({ console: errorsOnly, level: 'error' });
    l.warn('w');
    l.error('e');
    expect(errorsOnly.warn).not.toHaveBeenCalled();
    expect(errorsOnly.error).toHaveBeenCalledTimes(1);
  });

  it('rejects unknown levels', () => {
    expect(() => createConsoleLogger({ level: 'verbose' as 'debug' })).toThrow(TypeError);
  });
});
