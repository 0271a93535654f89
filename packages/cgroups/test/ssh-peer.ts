/**
 * The sshd peer for the connection tests: a private SSH connection of the test's own, and a way to end
 * it from the server side (the sshd processes serving it are killed, found by the client's port with
 * `ss -tnp`), as a crashed or rebooted host would. Only that one connection is touched: the sshd
 * listener and the other helpers' connections stay up.
 */

import { execFileSync } from 'node:child_process';
import { connectSsh, type SshClient } from '@hvkit/ssh';

/** The variables of the `sshd` peer the tests need. */
export const SSHD_VARIABLES = [
  'HVKIT_SSH_HOST',
  'HVKIT_SSH_PORT',
  'HVKIT_SSH_USER',
  'HVKIT_SSH_KEY',
  'HVKIT_SSH_KNOWN_HOSTS',
] as const;

/** Opens a new SSH connection to the sshd peer. */
export function openPeerSsh(env: Record<(typeof SSHD_VARIABLES)[number], string>): Promise<SshClient> {
  return connectSsh({
    host: env.HVKIT_SSH_HOST,
    port: Number(env.HVKIT_SSH_PORT),
    username: env.HVKIT_SSH_USER,
    auth: { privateKey: env.HVKIT_SSH_KEY },
    hostKey: { knownHostsFile: env.HVKIT_SSH_KNOWN_HOSTS },
    readyTimeout: 10_000,
  });
}

/**
 * The sshd processes that serve `ssh`: its client port comes from `$SSH_CLIENT` of a command run over it,
 * the processes from `ss -tnp` on the server side of that socket.
 */
export async function sshdServing(ssh: SshClient, sshdPort: number): Promise<number[]> {
  const { stdout } = await ssh.exec.exec({ argv: ['printenv', 'SSH_CLIENT'], timeoutMs: 10_000 });
  const clientPort = Number(stdout.toString('utf8').trim().split(/\s+/)[1]);
  if (!Number.isInteger(clientPort) || clientPort <= 0) {
    throw new Error(`no client port in SSH_CLIENT=${JSON.stringify(stdout.toString('utf8'))}`);
  }
  const listing = execFileSync(
    'ss',
    ['-Htnp', 'state', 'established', `( sport = :${sshdPort} and dport = :${clientPort} )`],
    { encoding: 'utf8', timeout: 10_000 },
  );
  const pids = [...new Set([...listing.matchAll(/\("sshd[^"]*",pid=(\d+),/g)].map((m) => Number(m[1])))];
  if (pids.length === 0) throw new Error(`no sshd process serves client port ${clientPort}:\n${listing}`);
  return pids;
}

/** Kills (SIGKILL) the given processes (gone ones are skipped). */
export function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
}

/**
 * Ends `ssh` from the server side: kills the sshd processes that serve it ({@link sshdServing}).
 * Resolves with their pids (the client notices the close a moment later).
 */
export async function killFromServer(ssh: SshClient, sshdPort: number): Promise<number[]> {
  const pids = await sshdServing(ssh, sshdPort);
  killPids(pids);
  return pids;
}

/** Resolves once `ssh` has seen its connection close (at most 10 s). */
export async function untilClosed(ssh: SshClient): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ssh.closed) {
    if (Date.now() > deadline) throw new Error('the SSH client did not see its connection close within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
