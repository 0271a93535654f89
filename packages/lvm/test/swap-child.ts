/**
 * Test helper run as a child process by src/capabilities/cleanup.live.test.ts: restores the newest artifact
 * of an SSH source on the lab VM in place (over the volume it was taken from) and stalls for good before
 * sending the command of one step of the swap (test/swap-steps.ts), after printing `STALLED`; the test then
 * kills it with SIGKILL, leaving an in-place restore that died in its swap. Its lease lives `ttlMs` (renewed
 * every `ttlMs / 4` while the data is written).
 *
 *   node --conditions=@hvkit/source --import tsx test/swap-child.ts <source dir> <ttlMs> <step>
 */

import type { ExecRequest, ExecTransport } from '@hvkit/core';
import { createSshSource } from '@hvkit/ssh';
import { connect } from '../src/connect';
import { connectLab } from './lab';
import { SWAP_STEPS, type SwapStep } from './swap-steps';

const [dir, ttl, step] = process.argv.slice(2);
if (!dir || !ttl || !step || !Object.hasOwn(SWAP_STEPS, step)) {
  throw new Error(`usage: swap-child.ts <source dir> <ttlMs> <${Object.keys(SWAP_STEPS).join('|')}>`);
}
const stallAt = SWAP_STEPS[step as SwapStep];
const ttlMs = Number(ttl);

const ssh = await connectLab();
const stall = (request: ExecRequest): boolean => {
  if (!stallAt(request.argv)) return false;
  console.log('STALLED');
  return true;
};
const exec: ExecTransport = {
  target: ssh.exec.target,
  exec: (request) => (stall(request) ? new Promise(() => {}) : ssh.exec.exec(request)),
  spawn: (request) => {
    if (stall(request)) throw new Error('a swap step is never spawned');
    return ssh.exec.spawn(request);
  },
};
const hv = await connect({ exec, naming: { leaseTtlMs: ttlMs, leaseRenewMs: Math.floor(ttlMs / 4) } });
await hv.backups?.restore?.(createSshSource(ssh, dir), { mode: 'in-place' });
console.log('DONE (not expected: the restore stalls in its swap)');
