/**
 * Test helper run as a child process by the backup live tests: backs up a guest into a directory sink and
 * reports on stdout, one line each, `PHASE <name>` when a progress phase starts, `STALLED` when it holds
 * the download (see `hold`), `DONE <artifact JSON>` or `ERROR <code> <message>` at the end. A test kills it
 * (SIGKILL) at one of these points to leave a crashed run behind, or lets it go on.
 *
 *   node --conditions=@hvkit/source --import tsx test/backup-child.ts <uri> <guest> <dir> <hold>
 *
 * `hold`: `none`; `download` (after the first MiB of a disk file reached the sink, the download stops for
 * good); `stdin` (the same, until a line arrives on stdin).
 */

import { createInterface } from 'node:readline';
import { type BackupSink, createDirectorySink, HvkitError } from '@hvkit/core';
import { connect } from '../src/connect';

const [uri, guest, dir, hold = 'none'] = process.argv.slice(2);
if (!uri || !guest || !dir) throw new Error('usage: backup-child.ts <uri> <guest> <dir> <hold>');

const lines = createInterface({ input: process.stdin });
const nextLine = new Promise<void>((resolve) => lines.once('line', () => resolve()));

const inner = createDirectorySink(dir);
/** The directory sink, with disk files held after their first MiB when `hold` says so. */
const sink: BackupSink = {
  kind: inner.kind,
  location: inner.location,
  removeFile: (name, options) => inner.removeFile?.(name, options) ?? Promise.resolve(),
  writeFile(name, source, options) {
    if (hold === 'none' || !/\/disk-[^/]+$/.test(name)) return inner.writeFile(name, source, options);
    async function* held(): AsyncGenerator<Uint8Array> {
      let n = 0;
      let stalled = false;
      for await (const chunk of source) {
        yield chunk;
        n += chunk.byteLength;
        if (!stalled && n >= 2 ** 20) {
          stalled = true;
          console.log('STALLED');
          if (hold === 'stdin') await nextLine;
          else await new Promise(() => {});
        }
      }
    }
    return inner.writeFile(name, held(), options);
  },
};

const hv = await connect({ uri });
let phase = '';
try {
  const artifact = await hv.backups.backup({ name: guest }, sink, {
    onProgress: (p) => {
      if (p.phase !== phase) {
        phase = p.phase;
        console.log(`PHASE ${phase}`);
      }
    },
  });
  console.log(`DONE ${JSON.stringify(artifact)}`);
} catch (error) {
  console.log(`ERROR ${HvkitError.isInstance(error) ? error.code : 'other'} ${(error as Error).message}`);
} finally {
  lines.close();
  await hv.close();
}
