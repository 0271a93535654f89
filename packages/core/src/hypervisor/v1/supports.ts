import type { SecurityModelName } from './model';

/**
 * What an adapter can do, down to fields. The conformance suite and the docs' capability tables read it;
 * users read it instead of guessing. `false` means the capability object is absent.
 */
export interface SupportsManifest {
  inventory:
    | false
    | {
        host: boolean;
        guests: boolean;
        networks: boolean;
        storage: boolean;
        /** Whether networks and NICs report VLAN ids. */
        vlans: boolean;
      };
  limits:
    | false
    | {
        /** When a plain `set` takes effect: at once, or at the guest's next boot. */
        applies: 'live' | 'next-boot';
        /** Apply modes `set` accepts. */
        modes: readonly LimitsApplyMode[];
        cpu: { weight: boolean; maxCores: boolean; reservationMHz: boolean };
        memory: { maxBytes: boolean; softBytes: boolean; minBytes: boolean; swapMaxBytes: boolean };
        disks:
          | { readBytesPerSec: boolean; writeBytesPerSec: boolean; readIops: boolean; writeIops: boolean }
          | false;
        network:
          | {
              inboundAverage: boolean;
              inboundPeak: boolean;
              inboundBurst: boolean;
              outboundAverage: boolean;
              outboundPeak: boolean;
              outboundBurst: boolean;
            }
          | false;
        pids: boolean;
      };
  labels:
    | false
    | {
        /** Models this adapter can report. */
        models: readonly SecurityModelName[];
        /** Whether `labels.set` exists (static/dynamic labels on inactive guests, or tags). */
        set: boolean;
        /** Whether `labels.hostModels` reports the host's security models. */
        hostModels: boolean;
      };
  backups:
    | false
    | {
        snapshots: boolean;
        /** Whether snapshots can include memory state. */
        memorySnapshots: boolean;
        full: boolean;
        incremental: boolean;
        hostConfig: boolean;
        /** Methods the adapter may use, e.g. `libvirt-push`, `volume-download`. */
        methods: readonly string[];
        /** Whether `backups.listCheckpoints` lists the backend's checkpoints with their chains. */
        checkpoints: boolean;
        /** Whether `backups.cleanup` finds and removes what a crashed backup left. */
        cleanup: boolean;
        /** What `backups.restore` can do; `false` when the method is absent. */
        restore:
          | false
          | {
              /** Restore as a new guest (new name, ids and MACs). */
              asNew: boolean;
              /** Restore over the disks of the same, stopped, guest. */
              inPlace: boolean;
              /** Restore an incremental backup by replaying its chain (the full, then each incremental). */
              incrementalChains: boolean;
            };
      };
  events: false | { lifecycle: boolean };
}

/** Where `limits.set` applies a change. */
export type LimitsApplyMode = 'live' | 'persistent' | 'both';

/** Recursive read-only view, used for manifests. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
