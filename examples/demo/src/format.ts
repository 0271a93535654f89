import { formatByteSize, type ResourceLimits, type SecurityLabel } from '@hvkit/core';

/** Bytes for humans; `null` is unlimited, `undefined` unset. */
export function bytes(value: number | null | undefined): string {
  if (value === undefined) return '-';
  if (value === null) return 'unlimited';
  return formatByteSize(value);
}

/** A rate in bytes/s for humans. */
export function rate(value: number | null | undefined): string {
  const b = bytes(value);
  return value === undefined || value === null ? b : `${b}/s`;
}

/** A plain number, `null` as unlimited. */
export function num(value: number | null | undefined): string {
  if (value === undefined) return '-';
  if (value === null) return 'unlimited';
  return String(value);
}

/** One-line summary of per-disk IO limits. */
export function diskLimits(limits: ResourceLimits): string {
  const parts = (limits.disks ?? []).map((d) => {
    const f = [
      d.readBytesPerSec != null ? `r ${rate(d.readBytesPerSec)}` : '',
      d.writeBytesPerSec != null ? `w ${rate(d.writeBytesPerSec)}` : '',
      d.readIops != null ? `r ${d.readIops} iops` : '',
      d.writeIops != null ? `w ${d.writeIops} iops` : '',
    ].filter(Boolean);
    return f.length ? `${d.device}: ${f.join(', ')}` : '';
  });
  return parts.filter(Boolean).join('; ') || '-';
}

/** One-line summary of per-NIC bandwidth limits. */
export function nicLimits(limits: ResourceLimits): string {
  const parts = (limits.nics ?? []).map((n) => {
    const f = [
      n.inboundAverageBytesPerSec != null ? `in ${rate(n.inboundAverageBytesPerSec)}` : '',
      n.outboundAverageBytesPerSec != null ? `out ${rate(n.outboundAverageBytesPerSec)}` : '',
    ].filter(Boolean);
    return f.length ? `${n.device}: ${f.join(', ')}` : '';
  });
  return parts.filter(Boolean).join('; ') || '-';
}

/** One label as `model/type label`. */
export function label(l: SecurityLabel): string {
  const text =
    l.label ?? (l.tags?.map((t) => (t.category ? `${t.category}:${t.name}` : t.name)).join(',') || '');
  const extra = [l.relabel === false ? 'relabel=no' : '', l.source ?? ''].filter(Boolean).join(' ');
  return `${l.model}/${l.type}${text ? ` ${text}` : ''}${extra ? ` (${extra})` : ''}`;
}
