/**
 * Opens the adapter from environment variables: VSPHERE_URL, VSPHERE_USER, VSPHERE_PASSWORD and optionally
 * VSPHERE_CA (a PEM file) or VSPHERE_THUMBPRINT. Falls back to the vcsim peer's HVKIT_VCSIM_* variables.
 * A plain `http://` VSPHERE_URL (a lab simulator) also needs VSPHERE_INSECURE_HTTP=1, the adapter's named
 * opt-out `insecureHttp`: the password then travels unencrypted.
 */

import { readFileSync } from 'node:fs';
import type { HypervisorAdapter } from '@hvkit/core';
import { connect } from '@hvkit/vmware-vsphere';

/** Connects with the settings from the environment. */
export async function connectFromEnv(): Promise<HypervisorAdapter> {
  const env = process.env;
  const url = env.VSPHERE_URL ?? env.HVKIT_VCSIM_URL;
  const username = env.VSPHERE_USER ?? env.HVKIT_VCSIM_USER;
  const password = env.VSPHERE_PASSWORD ?? env.HVKIT_VCSIM_PASSWORD;
  if (!url || !username || password === undefined) {
    throw new Error(
      'Set VSPHERE_URL, VSPHERE_USER and VSPHERE_PASSWORD (and VSPHERE_CA or VSPHERE_THUMBPRINT).',
    );
  }
  const caFile = env.VSPHERE_CA ?? (env.VSPHERE_URL ? undefined : env.HVKIT_VCSIM_CA);
  const thumbprint = env.VSPHERE_THUMBPRINT;
  const tls = caFile ? { ca: readFileSync(caFile, 'utf8') } : thumbprint ? { thumbprint } : undefined;
  const insecureHttp = env.VSPHERE_INSECURE_HTTP === '1';
  return connect({
    url,
    username,
    password,
    ...(tls ? { tls } : {}),
    ...(insecureHttp ? { insecureHttp } : {}),
  });
}
