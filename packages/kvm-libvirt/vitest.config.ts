import { defineConfig } from 'vitest/config';
import { hvkitVitest } from '../../vitest.shared';

// The live files share one libvirtd (and its QEMU guest); running them one at a time keeps them from
// stepping on each other's guest state and avoids concurrent event (de)registration races in the daemon.
export default defineConfig(hvkitVitest({ fileParallelism: false }));
