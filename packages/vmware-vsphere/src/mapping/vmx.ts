/**
 * The `.vmx` file (a VM's configuration as ESXi stores it: `key = "value"` lines) and VMDK descriptors:
 * the rewrites a restore as a new VM needs. Pure functions.
 */

/** One `key = "value"` line of a .vmx (keys compare case-insensitively, as ESXi reads them). */
export interface VmxEntry {
  key: string;
  value: string;
}

const LINE_RE = /^\s*([A-Za-z0-9_.:[\]-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$/;

/** Decodes the `|XX` escapes ESXi writes inside .vmx values. */
function unescapeValue(value: string): string {
  return value.replace(/\|([0-9A-Fa-f]{2})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

/** Encodes a value for a .vmx line: `|`, `"`, `#` and control characters as `|XX`. */
function escapeValue(value: string): string {
  return value.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must be escaped
    /[|"#\u0000-\u001f\u007f]/g,
    (c) => `|${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

/** The entries of a .vmx (comments, blank and unparsable lines left out), in file order. */
export function parseVmx(text: string): VmxEntry[] {
  const out: VmxEntry[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = LINE_RE.exec(line);
    if (!m) continue;
    out.push({ key: m[1] as string, value: unescapeValue(m[2] ?? m[3] ?? '') });
  }
  return out;
}

/** What {@link rewriteVmxForNewVm} changes. */
export interface VmxRewrite {
  /** The new VM's display name. */
  displayName: string;
  /** Disk device (`scsi0:0`) → the disk's descriptor file name, relative to the .vmx's folder. */
  disks: ReadonlyMap<string, string>;
}

/** Keys that tie a .vmx to the VM it came from; a new VM must not carry them (ESXi generates new ones). */
const IDENTITY_KEYS = [
  /^uuid\.bios$/i,
  /^uuid\.location$/i,
  /^vc\.uuid$/i,
  /^ethernet\d+\.(generatedAddress|generatedAddressOffset|address)$/i,
  /^sched\.swap\.derivedName$/i,
  /^migrate\.hostLog$/i,
  /^hvkit\.lease$/i,
  /^nvram$/i,
  /^extendedConfigFile$/i,
];

/**
 * The .vmx of a restored, new VM: the original's lines with a new `displayName`; `uuid.bios`,
 * `uuid.location` and `vc.uuid` removed (ESXi generates new ones at registration); every NIC's
 * `ethernetN.address`/`generatedAddress` removed and `ethernetN.addressType = "generated"` (new MACs); the
 * disks' `<device>.fileName` pointing at the restored files; the `nvram` file named after the new VM.
 * Lines the rewrite does not touch stay as they were (comments and order included).
 */
export function rewriteVmxForNewVm(text: string, rewrite: VmxRewrite): string {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const kept: string[] = [];
  const set = new Map<string, string>();
  const nics = new Set<string>();
  for (const line of lines) {
    const m = LINE_RE.exec(line);
    if (!m) {
      kept.push(line);
      continue;
    }
    const key = m[1] as string;
    const nic = /^(ethernet\d+)\./i.exec(key)?.[1];
    if (nic) nics.add(nic.toLowerCase());
    if (IDENTITY_KEYS.some((re) => re.test(key))) continue;
    if (/^displayName$/i.test(key)) continue;
    if (/^ethernet\d+\.addressType$/i.test(key)) continue;
    const disk = /^((?:scsi|ide|sata|nvme)\d+:\d+)\.fileName$/i.exec(key)?.[1];
    if (disk && rewrite.disks.has(disk.toLowerCase())) continue;
    kept.push(line);
  }
  set.set('displayName', rewrite.displayName);
  set.set('nvram', `${rewrite.displayName}.nvram`);
  for (const nic of [...nics].sort()) set.set(`${nic}.addressType`, 'generated');
  for (const [device, file] of rewrite.disks) {
    set.set(`${device}.fileName`, file);
    if (!kept.some((l) => new RegExp(`^\\s*${device.replace(/[.:]/g, '\\$&')}\\.present\\s*=`, 'i').test(l)))
      set.set(`${device}.present`, 'TRUE');
  }
  const added = [...set].map(([k, v]) => `${k} = "${escapeValue(v)}"`);
  return `${[...kept, ...added].join('\n')}\n`;
}

/** Largest VMDK descriptor {@link rewriteVmdkExtent} rewrites (descriptor files are a few hundred bytes). */
export const MAX_VMDK_DESCRIPTOR_BYTES = 64 * 1024;

/**
 * A VMDK text descriptor with its extent lines (`RW 2097152 VMFS "old-flat.vmdk"`) pointing at `extent`.
 * Returns `undefined` when the bytes are not a text descriptor (a sparse or monolithic file, or an empty
 * placeholder as vcsim writes), which is then restored as it is.
 */
export function rewriteVmdkExtent(bytes: Uint8Array, extent: string): Uint8Array | undefined {
  if (bytes.byteLength === 0 || bytes.byteLength > MAX_VMDK_DESCRIPTOR_BYTES) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  if (!/^#\s*Disk DescriptorFile/m.test(text)) return undefined;
  const extentRe = /^(\s*(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+)"[^"]*"/gm;
  if ((text.match(extentRe) ?? []).length !== 1) return undefined;
  return new TextEncoder().encode(text.replace(extentRe, (_, head: string) => `${head}"${extent}"`));
}
