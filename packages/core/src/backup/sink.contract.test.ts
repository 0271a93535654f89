/**
 * What the sinks say when they refuse something, word for word: file names (each rule, the name shown
 * escaped and cut), write options, sources, sizes, destinations, and the path problems of a directory. The
 * other sink tests check behaviour on real files and streams; these pin the messages users read.
 */

import { existsSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { listAll, rejection, testTempDir } from '../__test-utils__';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import { createDirectorySink, DIRECTORY_SINK_TEMP_PREFIX } from './directory-sink';
import {
  checkSinkFileName,
  checkSinkWriteOptions,
  createStreamSink,
  MAX_SINK_NAME_BYTES,
  MAX_SINK_NAME_SEGMENT_BYTES,
  sinkPathError,
  truncateUtf8,
} from './stream-sink';

function refusal(fn: () => unknown): HvkitError {
  try {
    fn();
  } catch (error) {
    expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT'), String(error)).toBe(true);
    return error as HvkitError;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

/** The HvkitError `promise` rejects with. */
async function hvkitRejection(promise: Promise<unknown>): Promise<HvkitError> {
  const error = await rejection(promise);
  expect(HvkitError.isInstance(error), String(error)).toBe(true);
  return error;
}

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

describe('file names', () => {
  it.each([
    ['', 'empty'],
    ['a\0b', 'contains a NUL byte'],
    ['a\\b', 'contains a backslash'],
    ['/etc/passwd', 'absolute'],
    ['C:x', 'absolute'],
    ['z:x', 'absolute'],
    ['a\nb', 'contains U+000A (a control, bidirectional or slash-like character)'],
    ['a\u202eb', 'contains U+202E (a control, bidirectional or slash-like character)'],
    ['a\uff0fb', 'contains U+FF0F (a control, bidirectional or slash-like character)'],
    ['a\ud800b', 'contains a lone UTF-16 surrogate'],
    ['a//b', 'empty path segment'],
    ['a/', 'empty path segment'],
    ['a/../b', '".." segment'],
    ['./a', '"." segment'],
    [`${'x'.repeat(MAX_SINK_NAME_SEGMENT_BYTES + 1)}`, 'a path segment is longer than 255 bytes'],
    [`${'x/'.repeat(MAX_SINK_NAME_BYTES / 2)}x`, 'longer than 1024 bytes'],
  ])('%j: %s', (name, why) => {
    const error = refusal(() => checkSinkFileName(name));
    expect(error.message).toMatch(
      new RegExp(`^Invalid backup file name .*: ${why.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.$`),
    );
    expect(error.details).toEqual({ name: name.slice(0, 200) });
  });

  it('accepts names at the limits, with a drive-like letter inside, and dots in segments', () => {
    for (const name of [
      'x'.repeat(MAX_SINK_NAME_SEGMENT_BYTES),
      `a/${'é'.repeat(127)}`,
      'a/C:x',
      '1:x',
      '..a/b.',
      'a.b/.c',
    ]) {
      expect(checkSinkFileName(name), name).toBe(name);
    }
    const longest = `${`${'x'.repeat(255)}/`.repeat(3)}${'x'.repeat(254)}/x`;
    expect(checkSinkFileName(longest)).toHaveLength(MAX_SINK_NAME_BYTES);
    expect(refusal(() => checkSinkFileName(`${longest}x`)).message).toMatch(/: longer than 1024 bytes\.$/);
  });

  it('shows the name in quotes with unsafe characters escaped, cut at 200 characters', () => {
    expect(refusal(() => checkSinkFileName('a\u202e\nb/..')).message).toBe(
      'Invalid backup file name "a\\u202e\\nb/..": contains U+202E (a control, bidirectional or slash-like character).',
    );
    expect(refusal(() => checkSinkFileName('a\u2066b')).message).toContain('"a\\u2066b"');
    expect(refusal(() => checkSinkFileName('x\ud800')).message).toBe(
      'Invalid backup file name "x\\ud800": contains a lone UTF-16 surrogate.',
    );
    const long = `${'n'.repeat(150)}/${'n'.repeat(150)}/..`;
    const error = refusal(() => checkSinkFileName(long));
    expect(error.message).toBe(`Invalid backup file name "${long.slice(0, 200)}…": ".." segment.`);
    expect(error.details).toEqual({ name: long.slice(0, 200) });
    expect(() => checkSinkFileName(7)).toThrow('Backup file name must be a string.');
  });

  it('truncateUtf8 keeps whole code points within the byte budget', () => {
    expect(truncateUtf8('abc', 3)).toBe('abc');
    expect(truncateUtf8('abcd', 3)).toBe('abc');
    expect(truncateUtf8('aé', 2)).toBe('a');
    expect(truncateUtf8('a😀b', 4)).toBe('a');
    expect(truncateUtf8('a😀b', 5)).toBe('a😀');
    expect(truncateUtf8('é', 0)).toBe('');
    expect(() => truncateUtf8('a', -1)).toThrow('truncateUtf8: maxBytes must be a non-negative integer.');
    expect(() => truncateUtf8('a', 1.5)).toThrow('truncateUtf8: maxBytes must be a non-negative integer.');
    expect(() => truncateUtf8(1 as unknown as string, 1)).toThrow('truncateUtf8: text must be a string.');
  });
});

describe('write options and path problems', () => {
  it('refuses bad write options with TypeError', () => {
    for (const options of [null, 'x', 5]) {
      expect(() => checkSinkWriteOptions(options as never)).toThrow('Sink write options must be an object.');
    }
    for (const expectedBytes of [-1, 1.5, '5', Number.NaN, 2 ** 53]) {
      expect(() => checkSinkWriteOptions({ expectedBytes } as never)).toThrow(
        'expectedBytes must be a non-negative integer.',
      );
    }
    expect(() => checkSinkWriteOptions({ expectedBytes: 0 })).not.toThrow();
    expect(() => checkSinkWriteOptions({ onProgress: 'x' } as never)).toThrow(
      'onProgress must be a function.',
    );
    expect(() => checkSinkWriteOptions({})).not.toThrow();
  });

  it.each([
    ['symlink', 'is a symbolic link', 'ELOOP'],
    ['not-directory', 'is not a directory', 'ENOTDIR'],
    ['replaced', 'was replaced while in use', 'ESTALE'],
  ] as const)('sinkPathError %s: CONFLICT, %s, %s', (problem, what, backendCode) => {
    const cause = new Error('x');
    const error = sinkPathError('a/b', problem, { operation: 'sink.writeFile', cause });
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toBe(
      `sink.writeFile: "a/b" ${what}; a sink does not follow symbolic links below its directory.`,
    );
    expect([error.backendCode, error.operation, error.cause]).toEqual([backendCode, 'sink.writeFile', cause]);
    expect(error.details).toEqual({ path: 'a/b' });
    expect(
      sinkPathError('p', problem, { where: 'ssh sink', operation: 'op' }).message.startsWith(
        'ssh sink: "p" ',
      ),
    ).toBe(true);
    expect(sinkPathError('p', problem).message.startsWith('sink: "p" ')).toBe(true);
  });
});

describe('the stream sink', () => {
  const collect = () => {
    const got: Buffer[] = [];
    const writable = new Writable({
      write(chunk: Buffer, _enc, done) {
        got.push(chunk);
        done();
      },
    });
    return { writable, got };
  };

  it('names itself, and refuses a bad open, source or stream with TypeError', async () => {
    expect(() => createStreamSink('x' as never)).toThrow('createStreamSink: open must be a function.');
    const plain = createStreamSink(() => collect().writable);
    expect([plain.kind, plain.location, plain.removeFile]).toEqual(['stream', 'stream', undefined]);
    const named = createStreamSink(() => collect().writable, { kind: 'k', location: 'l' });
    expect([named.kind, named.location]).toEqual(['k', 'l']);
    for (const source of [null, 'abc', {}, [Buffer.from('a')]]) {
      await expect(plain.writeFile('f', source as never)).rejects.toThrow(
        'Backup source must be an AsyncIterable<Uint8Array>.',
      );
    }
    for (const bad of [null, {}, { write: 1 }]) {
      await expect(createStreamSink(() => bad as never).writeFile('f', chunks('a'))).rejects.toThrow(
        'createStreamSink: open must return a Writable.',
      );
    }
    await expect(
      plain.writeFile(
        'f',
        (async function* () {
          yield 'text' as unknown as Uint8Array;
        })(),
      ),
    ).rejects.toThrow('Backup source yielded string, expected Uint8Array chunks.');
  });

  it('says how many bytes it expected and got, and skips empty chunks', async () => {
    const sink = createStreamSink(() => collect().writable);
    const short = await hvkitRejection(sink.writeFile('f', chunks('ab'), { expectedBytes: 3 }));
    expect(short.code).toBe('PROTOCOL');
    expect(short.message).toBe('Backup file "f": expected 3 bytes, got 2.');
    expect(short.details).toEqual({ name: 'f', expectedBytes: 3, receivedBytes: 2 });
    expect(short.operation).toBe('sink.writeFile');
    const long = await hvkitRejection(sink.writeFile('f', chunks('ab', 'cd'), { expectedBytes: 3 }));
    expect(long.message).toBe('Backup file "f": expected 3 bytes, got more than that.');
    expect(long.details).toEqual({ name: 'f', expectedBytes: 3, receivedBytes: 4 });
    const { writable, got } = collect();
    const file = await createStreamSink(() => writable).writeFile('f', chunks('', 'ab', '', 'c'), {
      expectedBytes: 3,
    });
    expect(file.bytes).toBe(3);
    expect(Buffer.concat(got).toString()).toBe('abc');
    expect(got.every((c) => c.length > 0)).toBe(true);
  });

  it('reports a destination that fails as REMOTE naming the file and the failure', async () => {
    const failing = new Writable({
      write(_chunk, _enc, done) {
        done(new Error('disk full'));
      },
    });
    const error = await hvkitRejection(
      createStreamSink(() => failing).writeFile('dir/f', chunks('a', 'b', 'c')),
    );
    expect(error.code).toBe('REMOTE');
    expect(error.message).toBe('Writing backup file "dir/f" failed: disk full');
    expect(error.operation).toBe('sink.writeFile');
    expect((error.cause as Error).message).toBe('disk full');
    const closed = new Writable({ write: (_c, _e, done) => done() });
    closed.destroy();
    const gone = await hvkitRejection(createStreamSink(() => closed).writeFile('f', chunks('a')));
    expect(gone.code).toBe('REMOTE');
  });

  it('passes an abort before opening as ABORTED with the operation', async () => {
    let opened = false;
    const sink = createStreamSink(() => {
      opened = true;
      return collect().writable;
    });
    const error = await hvkitRejection(sink.writeFile('f', chunks('a'), { signal: AbortSignal.abort() }));
    expect([error.code, error.operation, opened]).toEqual(['ABORTED', 'sink.writeFile', false]);
  });
});

describe('the directory sink', () => {
  const scratch = testTempDir('hvkit-sink-contract-');
  let n = 0;
  const fresh = () => join(scratch(), `d${++n}`);

  it('refuses a directory that is not a string, or empty, or holds a NUL, and names its temporary prefix', () => {
    expect(() => createDirectorySink(5 as unknown as string)).toThrow(
      'createDirectorySink: dir must be a string.',
    );
    for (const dir of ['', 'a\0b']) {
      const error = refusal(() => createDirectorySink(dir));
      expect(error.message).toBe('createDirectorySink: invalid directory.');
    }
    expect(DIRECTORY_SINK_TEMP_PREFIX).toBe('.hvkit-partial-');
  });

  it('names the operation of every write failure: a missing or unmakeable directory, an abort', async () => {
    const missing = fresh();
    const noDir = await hvkitRejection(
      createDirectorySink(missing, { createDirectory: false }).writeFile('f', chunks('a')),
    );
    expect([noDir.code, noDir.operation]).toEqual(['NOT_FOUND', 'sink.writeFile']);
    const file = fresh();
    writeFileSync(file, 'x');
    const under = await hvkitRejection(createDirectorySink(join(file, 'sub')).writeFile('f', chunks('a')));
    expect(under.operation).toBe('sink.writeFile');
    expect(under.message).toContain(join(file, 'sub'));
    const notMade = fresh();
    const aborted = await hvkitRejection(
      createDirectorySink(notMade).writeFile('f', chunks('a'), { signal: AbortSignal.abort() }),
    );
    expect([aborted.code, aborted.operation]).toEqual(['ABORTED', 'sink.writeFile']);
    // Nothing was made for an aborted write, not even the sink's directory.
    expect(existsSync(notMade)).toBe(false);
  });

  it('an abort that lands after the last chunk still leaves nothing behind', async () => {
    const dir = fresh();
    const controller = new AbortController();
    async function* source() {
      yield Buffer.from('all the data');
      controller.abort();
    }
    for (const fsync of [true, false]) {
      const error = await hvkitRejection(
        createDirectorySink(dir, { fsync }).writeFile('f', source(), { signal: controller.signal }),
      );
      expect([error.code, error.operation]).toEqual(['ABORTED', 'sink.writeFile']);
      expect(listAll(dir)).toEqual([]);
    }
  });

  it('removeFile: nothing to do below a missing directory or a file, ABORTED and errors named sink.removeFile', async () => {
    const dir = fresh();
    const sink = createDirectorySink(dir);
    await sink.writeFile('a/f', chunks('x'));
    await sink.writeFile('plain', chunks('x'));
    await expect(sink.removeFile?.('none/f')).resolves.toBeUndefined();
    await expect(sink.removeFile?.('plain/f')).resolves.toBeUndefined();
    await expect(sink.removeFile?.('a/none')).resolves.toBeUndefined();
    const aborted = await hvkitRejection(
      sink.removeFile?.('a/f', { signal: AbortSignal.abort() }) as Promise<void>,
    );
    expect([aborted.code, aborted.operation]).toEqual(['ABORTED', 'sink.removeFile']);
    expect(listAll(dir)).toEqual(['a', 'a/f', 'plain']);
    const isDir = await hvkitRejection(sink.removeFile?.('a') as Promise<void>);
    expect(isDir.operation).toBe('sink.removeFile');
    expect(isDir.message).toContain(join(dir, 'a'));
    await sink.removeFile?.('a/f');
    expect(listAll(dir)).toEqual(['a', 'plain']);
    symlinkSync(scratch(), join(dir, 'link'));
    const link = await hvkitRejection(sink.removeFile?.('link/f') as Promise<void>);
    expect([link.code, link.backendCode, link.operation]).toEqual(['CONFLICT', 'ELOOP', 'sink.removeFile']);
  });

  // Every file and directory the sink opens is closed again, whatever happens.
  it.skipIf(!existsSync('/proc/self/fd'))(
    'leaves no file descriptor open after writes, failures and removals',
    async () => {
      const open = () => readdirSync('/proc/self/fd').length;
      const dir = fresh();
      const sink = createDirectorySink(dir);
      await sink.writeFile('warm/up', chunks('x'));
      const before = open();
      await sink.writeFile('a/b/f', chunks('data'));
      await sink.writeFile('a/b/f', chunks('again'), { expectedBytes: 5 });
      await hvkitRejection(sink.writeFile('a/g', chunks('short'), { expectedBytes: 9 }));
      await hvkitRejection(
        sink.writeFile(
          'a/h',
          (async function* () {
            yield Buffer.from('x');
            throw hvkitError('REMOTE', 'source failed');
          })(),
        ),
      );
      await sink.removeFile?.('a/b/f');
      await sink.removeFile?.('a/none');
      expect(open()).toBe(before);
      expect(listAll(dir)).toEqual(['a', 'a/b', 'warm', 'warm/up']);
    },
  );
});
