/**
 * Test helper run as a child process by test/leftovers.test.ts: starts a throwaway libvirtd
 * (test/throwaway-libvirtd.ts), prints `STARTED <pid> <dir>` and then never disposes of it, so that the
 * test can end this process in the ways a test worker ends (a signal, SIGKILL, an exit without cleanup)
 * and check that the daemon does not outlive it.
 *
 *   node --conditions=@hvkit/source --import tsx test/throwaway-child.ts
 *
 * A line `exit` on stdin makes it call `process.exit(0)` at once; otherwise it waits to be signalled.
 */

import { createInterface } from 'node:readline';
import { ThrowawayLibvirtd } from './throwaway-libvirtd';

const daemon = await ThrowawayLibvirtd.start();
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'exit') process.exit(0);
});
console.log(`STARTED ${daemon.pid} ${daemon.dir}`);
