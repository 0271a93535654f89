/**
 * How a sink reads the answer of its checksum tool probe, against ssh2's server on loopback (no sshd peer
 * needed; see test/burst-server.ts). Only "no tool found" may become UNSUPPORTED.
 */

import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { useBurstServer } from '../test/burst-server';
import { rejectsWith } from '../test/sshd-peer';
import { createSshSink } from './sink';

const burst = useBurstServer();

const write = () =>
  createSshSink(burst.ssh(), '/srv/hvkit-backups').writeFile(
    'disk.bin',
    Readable.from([Buffer.from('data')]),
    {
      signal: AbortSignal.timeout(20_000),
    },
  );

describe('sink checksum tool probe', () => {
  it('is UNSUPPORTED only when the probe says none of the tools is there (exit 127)', async () => {
    burst.server().probeReply = { exit: 127 };
    const error = await rejectsWith(write(), 'UNSUPPORTED');
    expect(error.message).toMatch(/none found/);
  });

  it('is REMOTE, not "none found", when the probe was killed or failed otherwise', async () => {
    burst.server().probeReply = { exit: 'KILL' };
    const killed = await rejectsWith(write(), 'REMOTE');
    expect(killed.message).not.toMatch(/none found/);
    expect(killed.message).toMatch(/SIGKILL/);
    burst.server().probeReply = { exit: 2, stderr: 'sh: 1: Syntax error: end of file unexpected\n' };
    const failed = await rejectsWith(write(), 'REMOTE');
    expect(failed.message).toMatch(/exit status 2: sh: 1: Syntax error/);
    expect(failed.backendCode).toBe(2);
    burst.server().probeReply = { exit: 0, stdout: 'Welcome to the host\nopenssl\n' };
    const garbled = await rejectsWith(write(), 'REMOTE');
    expect(garbled.message).toMatch(/unexpected output/);
  });
});
