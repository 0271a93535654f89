/**
 * Builds one file-tree snapshot (root `/`) of exactly what the adapter reads on a host: single files,
 * directory listings (without descending) and whole group subtrees, each through the same
 * FilesTransport the adapter used, then renames the recorder's random scratch group to a fixed name.
 */

import { posix } from 'node:path';
import {
  FIXTURE_FORMATS,
  type FileTreeEntry,
  type FileTreeSnapshot,
  snapshotFileTree,
} from '@hvkit/conformance/fixtures';
import type { FilesTransport } from '@hvkit/core';

/** What to record. */
export interface SnapshotPlan {
  /** Single files (host paths); missing ones are left out. */
  files: string[];
  /** Directories listed, one level (host paths). */
  lists: string[];
  /** Subtrees recorded whole (host paths); missing ones are left out. */
  trees: string[];
  /** `[from, to]`: a group name replaced in every path. */
  rename?: [string, string];
}

function addParents(entries: Record<string, FileTreeEntry>, rel: string): void {
  let dir = posix.dirname(rel);
  while (dir !== '.' && dir !== '/' && !entries[dir]) {
    entries[dir] = { type: 'directory' };
    dir = posix.dirname(dir);
  }
}

/** Records the plan's paths into one snapshot rooted at `/`. */
export async function snapshotHost(
  files: FilesTransport,
  plan: SnapshotPlan,
  target: string,
): Promise<FileTreeSnapshot> {
  const entries: Record<string, FileTreeEntry> = { '.': { type: 'directory' } };
  const put = (abs: string, entry: FileTreeEntry) => {
    const rel = abs.replace(/^\/+/, '');
    if (entries[rel]?.type === 'directory' && entry.type !== 'file') return;
    entries[rel] = entry;
    addParents(entries, rel);
  };
  for (const path of plan.files) {
    try {
      const data = await files.readFile(path);
      put(path, { type: 'file', content: data.toString('utf8'), size: data.length });
    } catch {
      // missing on this host: replay reads NOT_FOUND, as the adapter did
    }
  }
  for (const dir of plan.lists) {
    try {
      for (const entry of await files.list(dir)) {
        const abs = posix.join(dir, entry.name);
        const rel = abs.replace(/^\/+/, '');
        if (!entries[rel]) put(abs, { type: entry.type === 'file' ? 'file' : entry.type, size: entry.size });
      }
      put(dir, { type: 'directory' });
    } catch {
      // missing
    }
  }
  for (const tree of plan.trees) {
    try {
      await files.stat(tree);
    } catch {
      continue;
    }
    const snap = await snapshotFileTree(files, tree, { maxEntries: 20_000 });
    for (const [rel, entry] of Object.entries(snap.entries))
      put(rel === '.' ? tree : posix.join(tree, rel), entry);
  }
  const renamed: Record<string, FileTreeEntry> = {};
  for (const [rel, entry] of Object.entries(entries).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const key = plan.rename
      ? rel
          .split('/')
          .map((p) => (p === plan.rename?.[0] ? plan.rename[1] : p))
          .join('/')
      : rel;
    renamed[key] = entry;
  }
  return { format: FIXTURE_FORMATS.files, version: 1, root: '/', target, entries: renamed };
}
