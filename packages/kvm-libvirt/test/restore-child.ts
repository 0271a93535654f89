/**
 * Test helper run as a child process by the restore live tests (the restore counterpart of
 * test/backup-child.ts): restores an artifact from a directory source and reports on stdout, one line each,
 * `STALLED` when it holds the upload (see `hold`), `DONE <result JSON>` or `ERROR <code> <message>` at the
 * end. A test kills it (SIGKILL) while it is held to leave a killed restore behind, or lets it go on.
 *
 *   node --conditions=@hvkit/source --import tsx test/restore-child.ts <uri> <dir> <artifact> <mode> <name|-> <run> <hold>
 *
 * `mode`: `new` or `in-place` (`name` `-` for in place); `run`: the restore's unique id (the `naming`
 * option), so that the test knows the volume names; `hold`: `none`; `upload` (after the first MiB of a disk
 * file was handed to the upload, it stops for good); `stdin` (the same, until a line arrives on stdin).
 */

import { createInterface } from 'node:readline';
import { type BackupSource, createDirectorySource, HvkitError } from '@hvkit/core';
import { connect } from '../src/connect';

const [uri, dir, artifact, mode, name, run, hold = 'none'] = process.argv.slice(2);
if (!uri || !dir || !artifact || (mode !== 'new' && mode !== 'in-place') || !name || !run) {
  throw new Error('usage: restore-child.ts <uri> <dir> <artifact> <new|in-place> <name|-> <run> <hold>');
}

const lines = createInterface({ input: process.stdin });
const nextLine = new Promise<void>((resolve) => lines.once('line', () => resolve()));

const inner = createDirectorySource(dir);
/** The directory source, with disk files held after their first MiB when `hold` says so. */
const source: BackupSource = {
  kind: inner.kind,
  location: inner.location,
  list: (options) => inner.list(options),
  readManifest: (path, options) => inner.readManifest(path, options),
  readFile(name, options) {
    const bytes = inner.readFile(name, options);
    if (hold === 'none' || !/\/disk-[^/]+$/.test(name)) return bytes;
    async function* held(): AsyncGenerator<Uint8Array> {
      let n = 0;
      let stalled = false;
      for await (const chunk of bytes) {
        yield chunk;
        n += chunk.byteLength;
        if (!stalled && n >= 2 ** 20) {
          stalled = true;
          // Give the restore a moment to hand the bytes to the upload stream.
          await new Promise((resolve) => setTimeout(resolve, 200));
          console.log('STALLED');
          if (hold === 'stdin') await nextLine;
          else await new Promise(() => {});
        }
      }
    }
    return held();
  },
};

const hv = await connect({ uri, naming: { uniqueId: () => run } });
try {
  const result = await hv.backups.restore?.(source, {
    artifact,
    mode,
    ...(mode === 'new' ? { name } : {}),
  });
  console.log(`DONE ${JSON.stringify({ guest: result?.guest.name, mode: result?.mode })}`);
} catch (error) {
  console.log(`ERROR ${HvkitError.isInstance(error) ? error.code : 'other'} ${(error as Error).message}`);
} finally {
  lines.close();
  await hv.close();
}
