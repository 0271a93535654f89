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
  it('reads what the host says about itself', async () => {
    const hello = await client().hello();
    expect(hello.product).not.toBe('');
    expect(hello.version).not.toBe('');
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

  it('checks the shape of the hello output', () => {
    expect(parseHello('Linux 6.1.0-13-amd64\n')).toEqual({ product: 'Linux', version: '6.1.0-13-amd64' });
    expect(() => parseHello('')).toThrow(/product/);
    expect(() => parseHello('a b c')).toThrow(HvkitError);
  });
});
