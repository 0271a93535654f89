import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { BorrowedConnection } from './borrowed-connection';
import type { ConnectionStateChange } from './connection';

const context = { adapter: 'test', target: 'ssh://root@host:22' };

describe('BorrowedConnection', () => {
  it("follows the caller's connection through onClose: closed at once, CONNECTION_LOST not retryable, listener removed", () => {
    let closed = false;
    const listeners = new Set<() => void>();
    const caller = {
      get closed() {
        return closed;
      },
      onClose(listener: () => void) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    const connection = new BorrowedConnection(context, caller);
    const changes: ConnectionStateChange[] = [];
    connection.onChange((c) => changes.push(c));
    expect(connection.state).toBe('open');
    expect(() => connection.ensureOpen('op')).not.toThrow();
    closed = true;
    for (const listener of [...listeners]) listener();
    expect(changes.map((c) => [c.previous, c.state])).toEqual([['open', 'closed']]);
    expect(changes[0]?.error).toMatchObject({ code: 'CONNECTION_LOST', retryable: false, adapter: 'test' });
    expect(listeners.size).toBe(0);
    const error = (() => {
      try {
        connection.ensureOpen('op');
      } catch (e) {
        return e;
      }
    })();
    expect(HvkitError.isInstance(error, 'CONNECTION_LOST')).toBe(true);
    expect(error).toMatchObject({ retryable: false, operation: 'op' });
    expect((error as HvkitError).message).toContain('ssh://root@host:22');
  });

  it('a failed call on a connection that went away meanwhile gets the closed error; on a live one, none', () => {
    const caller = { closed: false };
    const connection = new BorrowedConnection(context, caller);
    expect(connection.closedErrorAfter('op', new Error('EPIPE'))).toBeUndefined();
    caller.closed = true;
    const error = connection.closedErrorAfter('op', new Error('EPIPE'));
    expect(error).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
    expect(connection.lastError?.cause).toBeInstanceOf(Error);
    connection.close();
  });

  it('without a connection (or one without a boolean closed) it is open until close(), then closed for good', () => {
    for (const caller of [undefined, {}]) {
      const connection = new BorrowedConnection(context, caller);
      expect(connection.state).toBe('open');
      connection.close();
      connection.close();
      expect(connection.state).toBe('closed');
      expect(connection.lastError).toBeUndefined();
      expect(() => connection.ensureOpen('op')).toThrow(HvkitError);
    }
  });
});
