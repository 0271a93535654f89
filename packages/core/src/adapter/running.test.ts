import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { RunningOperations } from './running';

/** An operation that ends (after `cleanupMs`) when its signal aborts. */
const abortable = (cleanupMs: number) => (signal: AbortSignal) =>
  new Promise<string>((_resolve, reject) => {
    signal.addEventListener('abort', () => setTimeout(() => reject(signal.reason), cleanupMs), {
      once: true,
    });
  });

describe('RunningOperations', () => {
  it('close() aborts what runs with ABORTED and resolves true once it settled', async () => {
    const ops = new RunningOperations('test');
    let settledAt = 0;
    const op = ops.track('backups.backup', undefined, abortable(30)).catch((e: unknown) => {
      settledAt = Date.now();
      return e;
    });
    expect(ops.size).toBe(1);
    const closed = await ops.close(5_000);
    const closedAt = Date.now();
    expect(closed).toBe(true);
    const error = await op;
    expect(HvkitError.isInstance(error, 'ABORTED')).toBe(true);
    expect((error as HvkitError).message).toContain('The adapter was closed.');
    expect(settledAt).toBeGreaterThan(0);
    expect(settledAt).toBeLessThanOrEqual(closedAt);
    expect(ops.size).toBe(0);
  });

  it('close() stops waiting after ms and answers false; the operation goes on', async () => {
    const ops = new RunningOperations('test');
    const never = ops.track('backups.backup', undefined, () => new Promise<void>(() => {}));
    void never;
    expect(await ops.close(20)).toBe(false);
    expect(ops.size).toBe(1);
  });

  it('after close() a new operation fails CONNECTION_LOST, not retryable, without running', async () => {
    const ops = new RunningOperations('test');
    await ops.close(0);
    let ran = false;
    const error = await ops
      .track('backups.restore', undefined, async () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(ran).toBe(false);
    expect(HvkitError.isInstance(error, 'CONNECTION_LOST')).toBe(true);
    expect((error as HvkitError).retryable).toBe(false);
    expect((error as HvkitError).operation).toBe('backups.restore');
    expect(await ops.close(0)).toBe(true);
  });

  it("the caller's signal still aborts the operation alone", async () => {
    const ops = new RunningOperations('test');
    const caller = new AbortController();
    const op = ops.track('backups.backup', caller.signal, abortable(0)).catch((e: unknown) => e);
    caller.abort(new Error('mine'));
    expect(((await op) as Error).message).toBe('mine');
    expect(ops.closeSignal.aborted).toBe(false);
    expect(ops.size).toBe(0);
  });
});
