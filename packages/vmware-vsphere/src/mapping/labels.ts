/** vSphere tags, custom attributes and VM security flags → spec v1 `SecurityLabel`. */

import type { SecurityLabel } from '@hvkit/core';
import type { DataObject } from '../protocol/soap/schema';

/** Security-relevant facts of a VM's configuration. */
export interface VmSecurityFlags {
  /** `config.keyId` is set (VM encryption). */
  encrypted: boolean;
  /** A `VirtualTPM` device is present. */
  vtpm: boolean;
  /** `config.bootOptions.efiSecureBootEnabled`. */
  secureBoot: boolean;
  /** `config.firmware` (`bios` or `efi`). */
  firmware?: string;
}

/** VM paths the flags are read from. */
export const SECURITY_PATHS = [
  'config.keyId',
  'config.firmware',
  'config.bootOptions',
  'config.hardware.device',
] as const;

/** Reads {@link VmSecurityFlags} from VM properties. */
export function securityFlags(props: Record<string, unknown>): VmSecurityFlags {
  const devices = (props['config.hardware.device'] ?? []) as DataObject[];
  const boot = props['config.bootOptions'] as DataObject | undefined;
  const flags: VmSecurityFlags = {
    encrypted: props['config.keyId'] !== undefined && props['config.keyId'] !== null,
    vtpm: devices.some((d) => d?._type === 'VirtualTPM'),
    secureBoot: boot?.efiSecureBootEnabled === true,
  };
  if (typeof props['config.firmware'] === 'string') flags.firmware = props['config.firmware'];
  return flags;
}

/** The flags as `label` text: `encrypted=no vtpm=no secure-boot=no firmware=bios`. */
export function flagsText(flags: VmSecurityFlags): string {
  const yn = (b: boolean) => (b ? 'yes' : 'no');
  return `encrypted=${yn(flags.encrypted)} vtpm=${yn(flags.vtpm)} secure-boot=${yn(flags.secureBoot)}${
    flags.firmware ? ` firmware=${flags.firmware}` : ''
  }`;
}

/**
 * The `tag` security label of a VM: its tags (`{category, name}`) and, in `label`, the tags as
 * `category/name` followed by the security flags ({@link flagsText}). `type` is `static` (tags are assigned, not generated).
 */
export function tagLabel(tags: { category?: string; name: string }[], flags: VmSecurityFlags): SecurityLabel {
  const sorted = [...tags].sort((a, b) =>
    `${a.category ?? ''}/${a.name}`.localeCompare(`${b.category ?? ''}/${b.name}`),
  );
  const names = sorted.map((t) => (t.category ? `${t.category}/${t.name}` : t.name));
  return {
    model: 'tag',
    type: 'static',
    label: [...names, flagsText(flags)].join(' '),
    tags: sorted,
    source: 'config',
  };
}

/** Custom attribute values (`customValue` + `availableField`) as tags `{ category: field name, name: value }`. */
export function customAttributeTags(
  customValue: unknown,
  availableField: unknown,
): { category?: string; name: string }[] {
  const names = new Map<number, string>();
  if (Array.isArray(availableField)) {
    for (const f of availableField as DataObject[])
      if (typeof f.key === 'number' && typeof f.name === 'string') names.set(f.key, f.name);
  }
  const out: { category?: string; name: string }[] = [];
  if (Array.isArray(customValue)) {
    for (const v of customValue as DataObject[]) {
      if (typeof v.value !== 'string' || v.value === '') continue;
      const category = typeof v.key === 'number' ? names.get(v.key) : undefined;
      out.push(category ? { category, name: v.value } : { name: v.value });
    }
  }
  return out;
}
