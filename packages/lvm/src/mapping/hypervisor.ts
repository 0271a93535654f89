/**
 * Backend data -> the spec v1 model: pure functions, no I/O, tested on samples in `hypervisor.test.ts`.
 */

import type { Host } from '@hvkit/core';
import type { BackendHello } from '../protocol/client';

/** The `hypervisor` part of a `Host` from what the backend said about itself when we connected. */
export function toHypervisorInfo(hello: BackendHello): Host['hypervisor'] {
  const info: Host['hypervisor'] = { kind: hello.product, version: hello.version };
  if (hello.build !== undefined && hello.build !== '') info.build = hello.build;
  return info;
}
