/**
 * What the lvm recorders (test/record.ts, test/record-scenarios.ts) share: the normalisation rules (LVM's
 * UUIDs and times pinned, and the lab VM's other volume groups, other tests' `hvkit-test-<random>` that come
 * and go while a recording runs, cut out of every report, so a re-recording is identical to the last one but
 * for `recordedAt`) and the writing of a fixture folder.
 */

import { join } from 'node:path';
import {
  defaultRules,
  type ExecTranscript,
  fixtureMetadata,
  type IdMapRule,
  type NormaliseRules,
  normalise,
  normaliserId,
  type TextRule,
  writeFixture,
} from '@hvkit/conformance/fixtures';
import type { ExecTransport } from '@hvkit/core';
import type { SshClient } from '@hvkit/ssh';
import { connect } from '../src/connect';

/** LVM's UUIDs (new with every recording) pinned to stand-ins in order of first appearance. */
export const LVM_UUIDS: IdMapRule = {
  name: 'lvm-uuid',
  pattern:
    /\b[A-Za-z0-9]{6}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{6}\b/g,
  key: (m) => m[0],
  replace: (i) => `FIXTUR-0000-0000-0000-0000-0000-${String(i).padStart(6, '0')}`,
};

/** `lv_time` (`2026-12-07 16:05:55 +0000`) pinned to one instant, as the default rules pin ISO times. */
export const pinLvTime: TextRule = (text, context) =>
  context.kind === 'stdout'
    ? text.replace(/\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}/g, '2000-01-01 00:00:00 +0000')
    : text;

/**
 * Keeps only the rows of volume group `vg` in an `lvs`/`vgs`/`pvs` JSON report (rows of other groups are
 * other tests' on the shared lab VM). A report with nothing to drop is left as LVM printed it.
 */
export function onlyVolumeGroup(vg: string): TextRule {
  return (text, context) => {
    if (context.kind !== 'stdout' || !text.trimStart().startsWith('{') || !text.includes('"report"'))
      return text;
    let parsed: { report?: Record<string, unknown>[] };
    try {
      parsed = JSON.parse(text);
    } catch {
      return text;
    }
    if (!Array.isArray(parsed.report)) return text;
    let dropped = false;
    for (const section of parsed.report) {
      for (const [key, rows] of Object.entries(section)) {
        if (!Array.isArray(rows)) continue;
        const kept = rows.filter(
          (row) => typeof row !== 'object' || row === null || !('vg_name' in row) || row.vg_name === vg,
        );
        if (kept.length !== rows.length) {
          dropped = true;
          section[key] = kept;
        }
      }
    }
    return dropped ? `${JSON.stringify(parsed, null, 2)}\n` : text;
  };
}

/** The rules of a recording in volume group `vg`. */
export function lvmRules(vg: string): NormaliseRules {
  return defaultRules({ ids: [LVM_UUIDS], text: [pinLvTime, onlyVolumeGroup(vg)] });
}

/**
 * Normalises `transcript` (recorded in volume group `vg`) and writes it as test/fixtures/<name>/transcript.json
 * with its metadata (the LVM version read over `ssh`, and `notes`). Returns the folder.
 */
export async function writeLabFixture(
  ssh: SshClient,
  name: string,
  vg: string,
  transcript: ExecTranscript,
  notes: string,
): Promise<string> {
  // The lab VM's forwarded port changes with every boot; the fixture names the peer instead.
  transcript.target = 'ssh://root@lab-vm';
  const rules = lvmRules(vg);
  const hello = await connect({ ssh });
  await hello.close();
  const dir = join(import.meta.dirname, 'fixtures', name);
  await writeFixture(
    dir,
    {
      metadata: fixtureMetadata({
        recordedFrom: { server: hello.server.product, version: hello.server.version },
        normalisedWith: normaliserId(rules),
        notes,
      }),
      files: { 'transcript.json': normalise(transcript, rules) },
    },
    { clean: true },
  );
  console.log(`wrote ${dir} (${transcript.commands.length} commands)`);
  return dir;
}

/**
 * `exec` as the adapter sees it while recording in volume group `vg`: reports without the rows of other
 * groups ({@link onlyVolumeGroup}), as the replay will serve them. Other tests' groups then cannot change what
 * the suite does while it records (e.g. a guest more to look up), so the replay makes the same calls.
 */
export function onlyVolumeGroupExec(exec: ExecTransport, vg: string): ExecTransport {
  const rule = onlyVolumeGroup(vg);
  return {
    get target() {
      return exec.target;
    },
    async exec(request) {
      const result = await exec.exec(request);
      const text = result.stdout.toString('utf8');
      const kept = rule(text, { kind: 'stdout' });
      return kept === text ? result : { ...result, stdout: Buffer.from(kept, 'utf8') };
    },
    spawn: (request) => exec.spawn(request),
  };
}
