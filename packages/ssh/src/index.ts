/**
 * @hvkit/ssh: the SSH transport of hvkit, on ssh2. One verified, authenticated connection carries
 * exec calls (every argument POSIX-quoted), SFTP file access, dialed streams (a remote command's
 * stdin/stdout, e.g. `virt-ssh-helper`) and a verifying backup sink.
 * @packageDocumentation
 */
export const VERSION = '0.0.0';

export type { SshClient } from './client';
export { connectSsh } from './client';
export type {
  SshAuth,
  SshConnectOptions,
  SshHostKeyInfo,
  SshHostKeyPolicy,
  SshKnownHostsOptions,
} from './connection';
export { defaultKnownHostsFiles, SSH_CONNECT_OPTION_KEYS, sshAuthSecrets } from './connection';
export type { SshDialer, SshDialerOptions } from './dialer';
export { SSH_DIALER_OPTION_KEYS } from './dialer';
export type { SshExecProcess, SshExecTransport } from './exec';
export type { SshFilesTransport } from './files';
export type { HostKeyCheck, KnownHostEntry, KnownHosts } from './known-hosts';
export {
  checkHostKey,
  fingerprintOf,
  hostFieldMatches,
  hostLookupName,
  keyTypeOf,
  normalizeFingerprint,
  parseKnownHosts,
} from './known-hosts';
export type { RemoteCommandOptions } from './quote';
export { buildRemoteCommand, quoteArg, quoteArgv } from './quote';
export type { ChecksumTool, SshSink, SshSinkOptions } from './sink';
export { createSshSink } from './sink';
export type { SshSource, SshSourceOptions } from './source';
export { createSshSource } from './source';
