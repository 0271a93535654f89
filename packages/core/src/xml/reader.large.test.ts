/**
 * The reader behind `parseXml` on a large document: 5 MB of libvirt-like XML read correctly, in one linear
 * pass. Kept apart from ./reader.test.ts because it takes about a second: the mutation run
 * (`npm run test:mutation`) leaves it out, since it would run once for every mutant of the reader.
 */

import { describe, expect, it } from 'vitest';
import { parseXml, type XmlObject } from './parse';

describe('readXml via parseXml: a large document', () => {
  it('reads 5 MB of libvirt-like XML correctly', () => {
    const count = 25_000;
    const parts = ['<?xml version="1.0"?>\n<domain type="kvm">\n  <devices>\n'];
    for (let i = 0; i < count; i++) {
      parts.push(
        `    <disk type='file' device='disk' index="${i}">\r\n      <source file="/var/lib/images/d${i}.qcow2"/>\n` +
          `      <target dev="vd${i}" bus="virtio"/>\n      <serial>s&amp;${i}</serial>\n` +
          `      <!-- disk ${i} --><![CDATA[${i % 7 === 0 ? '<raw>' : ''}]]>\n    </disk>\n`,
      );
    }
    parts.push('  </devices>\n</domain>\n');
    const text = parts.join('');
    expect(text.length).toBeGreaterThan(5_000_000);
    const started = performance.now();
    const doc = parseXml(text, { alwaysArray: ['domain.devices.disk'] });
    const elapsed = performance.now() - started;
    const disks = ((doc.domain as XmlObject).devices as XmlObject).disk as XmlObject[];
    expect(disks).toHaveLength(count);
    for (const i of [0, 1, 7, 12_345, count - 1]) {
      expect(disks[i]).toEqual({
        source: { '@_file': `/var/lib/images/d${i}.qcow2` },
        target: { '@_dev': `vd${i}`, '@_bus': 'virtio' },
        serial: `s&${i}`,
        ...(i % 7 === 0 ? { '#text': '<raw>' } : {}),
        '@_type': 'file',
        '@_device': 'disk',
        '@_index': String(i),
      });
    }
    // Generous bound (a shared 2-core machine): a linear pass takes well under a second.
    expect(elapsed).toBeLessThan(5000);
  });
});
