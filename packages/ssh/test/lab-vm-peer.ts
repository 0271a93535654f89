/**
 * The lab VM peer (scripts/peers/lab-vm.sh) as seen by live tests: a Debian 12 guest under QEMU, reached
 * through QEMU user networking's port forward on 127.0.0.1, with a host key pinned by the image.
 */
import { livePeer } from '@hvkit/conformance';
import { connectSsh, type SshClient, type SshConnectOptions } from '../src/index';

export const LAB_VM_VARS = [
  'HVKIT_LAB_SSH_HOST',
  'HVKIT_LAB_SSH_PORT',
  'HVKIT_LAB_SSH_USER',
  'HVKIT_LAB_SSH_KEY',
  'HVKIT_LAB_SSH_KNOWN_HOSTS',
  'HVKIT_LAB_SSH_HOST_FINGERPRINT',
  'HVKIT_LAB_KERNEL',
] as const;

export const labVm = livePeer('lab-vm', LAB_VM_VARS);

/** `describe` title with the skip reason. */
export function labTitle(what: string): string {
  return `live lab-vm: ${what}${labVm.available ? '' : ` (skipped: ${labVm.reason})`}`;
}

type LabEnv = Record<(typeof LAB_VM_VARS)[number], string>;

/** The peer's variables (only call inside a suite that runs). */
export function labEnv(): LabEnv {
  if (!labVm.available) throw new Error(labVm.reason);
  return labVm.env;
}

/**
 * Options for root by key, verified against the peer's known_hosts. Under TCG the guest's key exchange is
 * emulated (about 1.1 s per connection), so the handshake gets more time than on loopback.
 */
export function labOptions(extra: Partial<SshConnectOptions> = {}): SshConnectOptions {
  const e = labEnv();
  return {
    host: e.HVKIT_LAB_SSH_HOST,
    port: Number(e.HVKIT_LAB_SSH_PORT),
    username: e.HVKIT_LAB_SSH_USER,
    auth: { privateKey: e.HVKIT_LAB_SSH_KEY },
    hostKey: { knownHostsFile: e.HVKIT_LAB_SSH_KNOWN_HOSTS },
    readyTimeout: 30_000,
    ...extra,
  };
}

/** Connects to the lab VM as root by key. */
export function connectLab(extra: Partial<SshConnectOptions> = {}): Promise<SshClient> {
  return connectSsh(labOptions(extra));
}
