/**
 * The steps of an in-place restore's swap (see restore in src/capabilities/backups.ts), as the command that
 * starts each: test/swap-child.ts stalls before one of them, and cleanup.live.test.ts fails one.
 *
 * - `aside`: `lvrename <vg> <lv> hvkit-replaced-<run>` (before it, the original is only marked);
 * - `into-place`: `lvrename <vg> hvkit-restore-<run>-0 <lv>` (before it, the original is put aside);
 * - `remove-aside`: the `lvremove` of `hvkit-replaced-<run>` (before it, the restored volume has the name);
 * - `deactivate`: `lvchange -an <vg>/<lv>` (before it, the original is removed and the restored volume still
 *   has the run's tags).
 */
export const SWAP_STEPS = {
  aside: (a: readonly string[]) => a[0] === 'lvrename' && (a[4] ?? '').startsWith('hvkit-replaced-'),
  'into-place': (a: readonly string[]) => a[0] === 'lvrename' && (a[3] ?? '').startsWith('hvkit-restore-'),
  'remove-aside': (a: readonly string[]) =>
    a[0] === 'lvremove' && a.some((x) => x.includes('/hvkit-replaced-')),
  deactivate: (a: readonly string[]) => a[0] === 'lvchange' && a.includes('-an'),
} as const;

export type SwapStep = keyof typeof SWAP_STEPS;
