/** VirtualMachine `snapshot` (VirtualMachineSnapshotInfo) → spec v1 `Snapshot` list. */

import type { Snapshot } from '@hvkit/core';
import type { DataObject, MoRef } from '../protocol/soap/schema';

/** One node of the snapshot tree with its moref. */
export interface SnapshotNode {
  ref: MoRef;
  snapshot: Snapshot;
}

/**
 * Flattens the snapshot tree, parents before children. Ids are the snapshot MOIDs (`snapshot-12`). `kind`
 * is `memory` when `layoutEx.snapshot` names a memory file for it (`memoryKey` ≥ 0), else `disk`.
 */
export function flattenSnapshots(info: unknown, layout: unknown): SnapshotNode[] {
  const memoryOf = new Map<string, boolean>();
  if (Array.isArray(layout)) {
    for (const l of layout as DataObject[]) {
      const key = (l.key as MoRef | undefined)?.value;
      if (key) memoryOf.set(key, typeof l.memoryKey === 'number' && l.memoryKey >= 0);
    }
  }
  const out: SnapshotNode[] = [];
  const walk = (list: unknown, parent: string | undefined) => {
    if (!Array.isArray(list)) return;
    for (const node of list as DataObject[]) {
      const ref = node.snapshot as MoRef | undefined;
      if (!ref?.value) continue;
      const snapshot: Snapshot = {
        id: ref.value,
        name: String(node.name ?? ''),
        createdAt: node.createTime instanceof Date ? node.createTime : new Date(String(node.createTime)),
        kind: memoryOf.get(ref.value) ? 'memory' : 'disk',
      };
      if (parent) snapshot.parentId = parent;
      if (typeof node.description === 'string' && node.description !== '')
        snapshot.description = node.description;
      out.push({ ref, snapshot });
      walk(node.childSnapshotList, ref.value);
    }
  };
  walk((info as DataObject | undefined)?.rootSnapshotList, undefined);
  return out;
}
