/**
 * Backend data -> the spec v1 model: pure functions, no I/O, tested on samples in `hypervisor.test.ts`.
 */

import type { Host } from '@hvkit/core';
import type { BackendHello } from '../protocol/client';

/** The `hypervisor` part of a `Host`: kind `cgroup-v1|cgroup-v2|cgroup-hybrid`, version the kernel release. */
export function toHypervisorInfo(hello: Pick<BackendHello, 'product' | 'version'>): Host['hypervisor'] {
  return { kind: hello.product, version: hello.version };
}
