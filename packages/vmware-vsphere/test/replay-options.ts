/** Settings shared by the recorder and the replay/live conformance tests. */

/** Checks skipped on vcsim, with the reason. */
export const VCSIM_SKIPS: Record<string, string> = {
  'backups.host-config':
    'vcsim 0.24.2 returns ManagedObjectNotFound for HostFirmwareSystem.BackupFirmwareConfiguration; the adapter answers a typed UNSUPPORTED (src/capabilities/backups.live.test.ts checks it)',
};

/**
 * Checks skipped when recording and replaying fixtures: the change feed is a long poll that races the
 * suite's aborts, so which requests go out depends on timing and cannot replay exactly. The live test
 * (src/conformance.live.test.ts) runs the events checks against vcsim.
 */
export const REPLAY_SKIPS: Record<string, string> = {
  ...VCSIM_SKIPS,
  events:
    'the WaitForUpdatesEx change feed is a long poll racing the aborts of the checks, so its requests are timing-dependent; checked live in src/conformance.live.test.ts',
};

/**
 * Values of a run that are not the server's data and differ from run to run, for the recorder and the replay
 * (text rules apply to the cassette and to each replayed request): backup and restore run ids (time and
 * random suffix, in snapshot descriptions, leases, datastore folder and VM names) and the lease owner
 * (`<hostname>:<pid>`, in the VM's `hvkit.lease` and in `hvkit-lease.json`).
 */
export function vcsimRunIdRule(text: string): string {
  return text
    .replace(/\b\d{8}T\d{6}Z-((?:full|incremental|host-config)-)?[0-9a-f]{6}\b/g, '20000101T000000Z-$1000000')
    .replace(/(owner(?:&quot;|&#34;|"|\\")\s*:\s*(?:&quot;|&#34;|"|\\"))[^"&\\]*/g, '$1hvkit-host:1');
}
