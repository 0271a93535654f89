/**
 * Opens the kvm-libvirt adapter from the environment: `LIBVIRT_URI` (default `qemu:///system`), e.g.
 * `test+unix:///path/to/node.xml` or `qemu+ssh://root@host/system?keyfile=/root/.ssh/id_ed25519`.
 */

import { connect, type KvmLibvirtAdapter } from '@hvkit/kvm-libvirt';

/** Connects to `$LIBVIRT_URI`. */
export function connectFromEnv(): Promise<KvmLibvirtAdapter> {
  return connect({ uri: process.env.LIBVIRT_URI ?? 'qemu:///system', timeoutMs: 15_000 });
}
