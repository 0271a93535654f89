import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { rejection } from '../__test-utils__';
import { HvkitError } from '../errors/hvkit-error';
import type { Progress } from '../hypervisor/v1/model';
import { checkSinkFileName, createStreamSink, truncateUtf8 } from './stream-sink';

/** A Writable that keeps what it receives. */
function collector(options: { highWaterMark?: number; delayMs?: number } = {}) {
  const chunks: Buffer[] = [];
  let received = 0;
  const stream = new Writable({
    highWaterMark: options.highWaterMark ?? 16 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      const done = () => {
        chunks.push(chunk);
        received += chunk.length;
        callback();
      };
      if (options.delayMs) setTimeout(done, options.delayMs);
      else done();
    },
  });
  return {
    stream,
    data: () => Buffer.concat(chunks),
    received: () => received,
  };
}

async function* chunksOf(data: Buffer, size: number) {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

describe('createStreamSink', () => {
  it('writes, hashes and reports progress', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const out = collector();
    const opened: string[] = [];
    const sink = createStreamSink(
      async (name) => {
        opened.push(name);
        return out.stream;
      },
      { location: 'memory' },
    );
    expect(sink.kind).toBe('stream');
    expect(sink.location).toBe('memory');
    expect(sink.removeFile).toBeUndefined();
    const progress: Progress[] = [];
    const file = await sink.writeFile('guest/vda.raw', chunksOf(data, 65536), {
      expectedBytes: data.length,
      onProgress: (p) => progress.push(p),
    });
    expect(opened).toEqual(['guest/vda.raw']);
    expect(file).toEqual({
      name: 'guest/vda.raw',
      bytes: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
    });
    expect(out.data().equals(data)).toBe(true);
    expect(out.stream.writableFinished).toBe(true);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.processedBytes).toBeGreaterThan(progress[i - 1]!.processedBytes);
    }
    expect(progress.at(-1)).toEqual({
      phase: 'write',
      processedBytes: data.length,
      totalBytes: data.length,
      file: 'guest/vda.raw',
    });
  });

  it('pulls from the source only as fast as a slow destination drains', async () => {
    const highWaterMark = 16 * 1024;
    const chunk = 4 * 1024;
    const out = collector({ highWaterMark, delayMs: 1 });
    let produced = 0;
    let maxLead = 0;
    async function* producer() {
      for (let i = 0; i < 200; i++) {
        maxLead = Math.max(maxLead, produced - out.received());
        produced += chunk;
        yield Buffer.alloc(chunk, i);
      }
    }
    const sink = createStreamSink(() => out.stream);
    const file = await sink.writeFile('slow.bin', producer());
    expect(file.bytes).toBe(200 * chunk);
    expect(out.received()).toBe(200 * chunk);
    // Without backpressure the producer would run 800 KiB ahead; with it, about one buffer's worth.
    expect(maxLead).toBeLessThanOrEqual(highWaterMark + 2 * chunk);
  });

  it('an abort destroys the stream, closes the source and rejects with ABORTED', async () => {
    const out = collector();
    let closed = false;
    const controller = new AbortController();
    async function* producer() {
      try {
        yield Buffer.alloc(1000, 1);
        controller.abort();
        yield Buffer.alloc(1000, 2);
        await new Promise(() => {});
      } finally {
        closed = true;
      }
    }
    const sink = createStreamSink(() => out.stream);
    const error = (await rejection(
      sink.writeFile('x', producer(), { signal: controller.signal }),
    )) as HvkitError;
    expect(error.code).toBe('ABORTED');
    expect(out.stream.destroyed).toBe(true);
    expect(out.stream.writableFinished).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(true);
  });

  it('an abort while the source hangs still ends the write', async () => {
    const controller = new AbortController();
    async function* hanging() {
      yield Buffer.alloc(10);
      await new Promise(() => {});
    }
    const sink = createStreamSink(() => collector().stream);
    const pending = rejection(sink.writeFile('x', hanging(), { signal: controller.signal }));
    setTimeout(() => controller.abort(), 20);
    expect(((await pending) as HvkitError).code).toBe('ABORTED');
  });

  it('an abort while waiting for a stuck destination to drain still ends the write', async () => {
    const stuck = new Writable({ highWaterMark: 1024, write() {} });
    const controller = new AbortController();
    const sink = createStreamSink(() => stuck);
    const pending = rejection(
      sink.writeFile('x', chunksOf(Buffer.alloc(1024 * 1024), 4096), { signal: controller.signal }),
    );
    setTimeout(() => controller.abort(), 20);
    expect(((await pending) as HvkitError).code).toBe('ABORTED');
    expect(stuck.destroyed).toBe(true);
  });

  it('rejects an already-aborted signal without opening or pulling', async () => {
    const controller = new AbortController();
    controller.abort();
    let opened = false;
    let pulled = false;
    async function* producer() {
      pulled = true;
      yield Buffer.alloc(1);
    }
    const sink = createStreamSink(() => {
      opened = true;
      return collector().stream;
    });
    expect(
      ((await rejection(sink.writeFile('x', producer(), { signal: controller.signal }))) as HvkitError).code,
    ).toBe('ABORTED');
    expect(opened).toBe(false);
    expect(pulled).toBe(false);
  });

  it('fails with PROTOCOL when the size differs from expectedBytes', async () => {
    const short = collector();
    const sink = createStreamSink(() => short.stream);
    const fewer = (await rejection(
      sink.writeFile('x', chunksOf(Buffer.alloc(100), 10), { expectedBytes: 101 }),
    )) as HvkitError;
    expect(fewer.code).toBe('PROTOCOL');
    expect(fewer.details).toMatchObject({ expectedBytes: 101, receivedBytes: 100 });
    expect(short.stream.destroyed).toBe(true);

    let pulled = 0;
    async function* tooMany() {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield Buffer.alloc(10);
      }
    }
    const more = (await rejection(
      createStreamSink(() => collector().stream).writeFile('y', tooMany(), { expectedBytes: 25 }),
    )) as HvkitError;
    expect(more.code).toBe('PROTOCOL');
    // It stopped as soon as the count passed the expectation.
    expect(pulled).toBe(3);
  });

  it('passes the source error through and destroys the stream', async () => {
    const boom = new Error('disk read failed');
    async function* failing() {
      yield Buffer.alloc(10);
      throw boom;
    }
    const out = collector();
    const error = await rejection(createStreamSink(() => out.stream).writeFile('x', failing()));
    expect(error).toBe(boom);
    expect(out.stream.destroyed).toBe(true);
  });

  it('reports a destination error as REMOTE with the cause and closes the source', async () => {
    const diskFull = Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' });
    let written = 0;
    const failing = new Writable({
      write(_chunk, _enc, callback) {
        if (++written === 3) callback(diskFull);
        else callback();
      },
    });
    let closed = false;
    async function* producer() {
      try {
        for (let i = 0; i < 100; i++) yield Buffer.alloc(1000);
      } finally {
        closed = true;
      }
    }
    const error = (await rejection(createStreamSink(() => failing).writeFile('x', producer()))) as HvkitError;
    expect(error.code).toBe('REMOTE');
    expect(error.cause).toBe(diskFull);
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(true);
  });

  it('rejects chunks that are not bytes with TypeError', async () => {
    async function* strings() {
      yield 'text' as unknown as Uint8Array;
    }
    await expect(createStreamSink(() => collector().stream).writeFile('x', strings())).rejects.toThrow(
      TypeError,
    );
  });

  it('handles an empty source', async () => {
    const progress: Progress[] = [];
    const out = new PassThrough();
    out.resume();
    const file = await createStreamSink(() => out).writeFile('empty', (async function* () {})(), {
      onProgress: (p) => progress.push(p),
    });
    expect(file).toEqual({ name: 'empty', bytes: 0, sha256: createHash('sha256').digest('hex') });
    expect(progress).toEqual([{ phase: 'write', processedBytes: 0, totalBytes: undefined, file: 'empty' }]);
  });

  it('exposes removeFile when given a remover', async () => {
    const removed: string[] = [];
    const sink = createStreamSink(() => collector().stream, {
      kind: 'ssh',
      remove: async (name) => {
        removed.push(name);
      },
    });
    expect(sink.kind).toBe('ssh');
    await sink.removeFile?.('a/b');
    expect(removed).toEqual(['a/b']);
    await expect(sink.removeFile?.('../etc/passwd')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('validates arguments', async () => {
    const sink = createStreamSink(() => collector().stream);
    const src = () => chunksOf(Buffer.alloc(1), 1);
    await expect(sink.writeFile('../x', src())).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(sink.writeFile('x', 'nope' as unknown as AsyncIterable<Uint8Array>)).rejects.toThrow(
      TypeError,
    );
    await expect(sink.writeFile('x', src(), { expectedBytes: -1 })).rejects.toThrow(TypeError);
    await expect(sink.writeFile('x', src(), { onProgress: 5 as unknown as () => void })).rejects.toThrow(
      TypeError,
    );
    expect(() => createStreamSink(null as unknown as () => Writable)).toThrow(TypeError);
  });
});

describe('checkSinkFileName', () => {
  /** What checkSinkFileName threw for `name` (undefined when it accepted it). */
  function refusal(name: string): unknown {
    try {
      checkSinkFileName(name);
    } catch (error) {
      return error;
    }
    return undefined;
  }

  it.each([
    'vda.qcow2',
    'guest-1/vda.qcow2',
    'a/b/c',
    '.hidden',
    'x..y',
    'dots...',
    'résumé/日本語.qcow2',
    'family-\u{1F468}\u200D\u{1F469}\u200D\u{1F467}.raw',
    'x'.repeat(255),
    `${'é'.repeat(127)}x/${'y'.repeat(255)}`,
  ])('accepts %j', (name) => {
    expect(checkSinkFileName(name)).toBe(name);
  });

  it.each([
    ['newline', 'a\nb'],
    ['carriage return', 'a\rb'],
    ['tab', 'a\tb'],
    ['escape', 'a\u001bb'],
    ['DEL', 'a\u007fb'],
    ['next line (C1)', 'a\u0085b'],
    ['line separator', 'a\u2028b'],
    ['paragraph separator', 'a\u2029b'],
    ['right-to-left override', 'evil\u202Eexe.raw'],
    ['left-to-right embedding', 'a\u202Ab'],
    ['left-to-right isolate', 'a\u2066b'],
    ['pop directional isolate', 'a\u2069b'],
    ['right-to-left mark', 'a\u200Fb'],
    ['Arabic letter mark', 'a\u061Cb'],
    ['fullwidth solidus', 'guest\uFF0Fdisk'],
    ['fullwidth reverse solidus', 'guest\uFF3Cdisk'],
    ['division slash', 'guest\u2215disk'],
    ['fraction slash', 'guest\u2044disk'],
    ['big solidus', 'guest\u29F8disk'],
    ['lone surrogate', 'a\uD800b'],
    ['segment of 256 bytes', 'x'.repeat(256)],
    ['segment of 256 bytes in UTF-8', 'é'.repeat(128)],
    ['total length over 1024 bytes', `${'d'.repeat(200)}/`.repeat(6) + 'x'],
  ])('rejects a name with a %s with INVALID_ARGUMENT', (_what, name) => {
    const thrown = refusal(name);
    expect(HvkitError.isInstance(thrown, 'INVALID_ARGUMENT')).toBe(true);
    // The message shows the name escaped: no raw control or bidirectional character reaches a log.
    expect((thrown as Error).message).not.toMatch(
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the characters that must not appear.
      /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Cs}/u,
    );
  });

  it.each([
    '',
    '/abs',
    '../x',
    'a/../b',
    'a/..',
    '..',
    '.',
    './a',
    'a/./b',
    'a//b',
    'a/',
    'a\0b',
    'a\\b',
    'C:\\x',
    'C:x',
  ])('rejects %j with INVALID_ARGUMENT', (name) => {
    expect(HvkitError.isInstance(refusal(name), 'INVALID_ARGUMENT')).toBe(true);
  });

  it('throws TypeError for non-strings', () => {
    expect(() => checkSinkFileName(5)).toThrow(TypeError);
  });
});

describe('truncateUtf8', () => {
  it('cuts by UTF-8 bytes between code points', () => {
    expect(truncateUtf8('abc', 10)).toBe('abc');
    expect(truncateUtf8('abcdef', 3)).toBe('abc');
    expect(truncateUtf8('日本語', 7)).toBe('日本');
    expect(truncateUtf8('é\u{1F600}x', 5)).toBe('é');
    expect(truncateUtf8('é\u{1F600}x', 6)).toBe('é\u{1F600}');
    expect(truncateUtf8('x', 0)).toBe('');
    expect(() => truncateUtf8('x', -1)).toThrow(TypeError);
  });
});
