import { createLocalExec, HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { connect, type LvmOptions } from './connect';

async function outcome(p: Promise<unknown>) {
  return p.then(
    () => 'resolved',
    (e: unknown) => e,
  );
}

describe('connect options', () => {
  it('refuses misuse with TypeError and bad values with INVALID_ARGUMENT, before running anything', async () => {
    const exec = createLocalExec();
    let ran = 0;
    const counting = {
      ...exec,
      target: 'local',
      exec: (r: Parameters<typeof exec.exec>[0]) => {
        ran++;
        return exec.exec(r);
      },
    };
    expect(await outcome(connect({ exec: counting, nope: 1 } as never))).toBeInstanceOf(TypeError);
    expect(await outcome(connect({ exec: counting, ssh: { exec: counting } }))).toBeInstanceOf(TypeError);
    expect(await outcome(connect({ ssh: {} as never }))).toBeInstanceOf(TypeError);
    expect(await outcome(connect({ exec: counting, guests: { web: 'vg/lv' as never } }))).toBeInstanceOf(
      TypeError,
    );
    expect(
      await outcome(connect({ exec: counting, freeze: { freeze: async () => {} } as never })),
    ).toBeInstanceOf(TypeError);
    for (const abortSettleMs of [-1, Number.NaN, Infinity, '5' as never]) {
      expect(await outcome(connect({ exec: counting, abortSettleMs })), String(abortSettleMs)).toBeInstanceOf(
        TypeError,
      );
      expect(
        await outcome(connect({ exec: counting, closeTimeoutMs: abortSettleMs })),
        String(abortSettleMs),
      ).toBeInstanceOf(TypeError);
    }
    for (const naming of [
      'x',
      { uniqueId: 'rec1' },
      { nope: 1 },
      { leaseTtlMs: 0 },
      { leaseRenewMs: 1.5 },
      { leaseRenewMs: 5000, leaseTtlMs: 5000 },
    ]) {
      expect(
        await outcome(connect({ exec: counting, naming } as never)),
        JSON.stringify(naming),
      ).toBeInstanceOf(TypeError);
    }
    for (const bad of [
      { guests: { web: ['vg0/$(id)'] } },
      { guests: { web: ['vg0'] } },
      { guests: { a: ['vg0/x'], b: ['vg0/x'] } },
      { guests: { ' ': ['vg0/x'] } },
      { snapshotSize: { percent: 0 } },
      { snapshotSize: { percent: 101 } },
      { snapshotSize: { minBytes: -1 } },
      { snapshotSize: { minBytes: 1.5 } },
    ] as LvmOptions[]) {
      const error = await outcome(connect({ exec: counting, ...bad }));
      expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT'), JSON.stringify(bad)).toBe(true);
    }
    expect(ran).toBe(0);
  });
});
