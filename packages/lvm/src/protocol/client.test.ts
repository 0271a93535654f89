import { createLocalExec, HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { LvmClient, MAX_OUTPUT_BYTES, parseHello } from './client';

// Real processes through core's local exec (no shell); node plays a misbehaving backend tool.
const node = process.execPath;

function client(timeoutMs = 10_000): LvmClient {
  return new LvmClient(createLocalExec(), timeoutMs);
}

async function failure(promise: Promise<unknown>): Promise<HvkitError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!HvkitError.isInstance(error)) throw new Error(`expected an HvkitError, got ${String(error)}`);
  return error;
}

describe('LvmClient (exec)', () => {
  it('asks `lvm version` first, so a host without LVM fails with a typed error', async () => {
    // This machine has no lvm2 (the lab VM has): the program is missing, NOT_FOUND, or it runs and answers.
    const outcome = await client()
      .hello()
      .then(
        (hello) => hello,
        (e: unknown) => e,
      );
    if (HvkitError.isInstance(outcome)) expect(outcome.code).toBe('NOT_FOUND');
    else expect(outcome).toMatchObject({ product: 'LVM', version: expect.stringMatching(/^\d+\.\d+/) });
  });

  it('maps a failed command through errors.ts', async () => {
    const error = await failure(
      client().run([node, '-e', 'process.stderr.write("no such guest"); process.exit(3)']),
    );
    expect(error).toMatchObject({ code: 'NOT_FOUND', backendCode: 3, backendMessage: 'no such guest' });
  });

  it('passes arguments as they are, without a shell', async () => {
    const hostile = '$(touch /tmp/hvkit-pwned); `id`';
    expect(await client().run([node, '-e', 'process.stdout.write(process.argv[1])', hostile])).toBe(hostile);
  });

  it('refuses output above MAX_OUTPUT_BYTES', async () => {
    const script = `process.stdout.write("x".repeat(${MAX_OUTPUT_BYTES + 10}))`;
    expect(await failure(client().run([node, '-e', script]))).toMatchObject({ code: 'PROTOCOL' });
  });

  it('times out on a command that never ends', async () => {
    expect(await failure(client(300).run([node, '-e', 'setTimeout(() => {}, 60000)']))).toMatchObject({
      code: 'TIMEOUT',
    });
  });

  it('stops at once when the signal aborts', async () => {
    const controller = new AbortController();
    const pending = client().run([node, '-e', 'setTimeout(() => {}, 60000)'], { signal: controller.signal });
    controller.abort();
    expect(await failure(pending)).toMatchObject({ code: 'ABORTED' });
  });

  it('reads `lvm version` and refuses other output', () => {
    const text = [
      '  LVM version:     2.03.16(2) (2022-05-18)',
      '  Library version: 1.02.185 (2022-05-18)',
      '  Driver version:  4.47.0',
      '  Configuration:   ./configure --build=x86_64-linux-gnu',
      '',
    ].join('\n');
    expect(parseHello(text)).toEqual({ product: 'LVM', version: '2.03.16(2)', build: '4.47.0' });
    expect(parseHello('  LVM version:     2.03.16(2) (2022-05-18)\n')).toEqual({
      product: 'LVM',
      version: '2.03.16(2)',
    });
    expect(() => parseHello('')).toThrow(/LVM version/);
    expect(() => parseHello('Linux 6.1.0')).toThrow(HvkitError);
  });
});

describe('LvmClient.lvremoveByTag', () => {
  it('refuses what is not an LVM tag before any command runs (an empty tag must never reach lvremove)', async () => {
    const sent: string[][] = [];
    const local = createLocalExec();
    const c = new LvmClient(
      {
        target: 'local',
        exec: (r) => {
          sent.push([...r.argv]);
          return local.exec(r);
        },
        spawn: (r) => {
          sent.push([...r.argv]);
          return local.spawn(r);
        },
      },
      10_000,
    );
    for (const bad of ['', '-y', 'a b', 'x;rm', 'vg/lv', '@t', 'x'.repeat(129)]) {
      await expect(c.lvremoveByTag(bad)).rejects.toThrow(TypeError);
    }
    expect(sent).toEqual([]);
  });
});
