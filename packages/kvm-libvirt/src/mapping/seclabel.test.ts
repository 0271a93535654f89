import { HvkitError, type SecurityLabel } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { sample } from './__samples__/load';
import { parseDomainXmlDetails } from './domain';
import { parseCapabilitiesXml } from './host';
import { liveSecurityLabels, seclabelElement, setDomainSeclabel } from './seclabel';

function expectInvalid(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT')).toBe(true);
    return;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

const labelsOf = (xml: string) => parseDomainXmlDetails(xml).seclabels;

describe('reading <seclabel>', () => {
  it('reads the live DAC label of a running QEMU guest', () => {
    expect(labelsOf(sample('qemu-guest1-live.xml'))).toEqual([
      {
        model: 'dac',
        type: 'dynamic',
        label: '+999:+994',
        imageLabel: '+999:+994',
        relabel: true,
        source: 'live',
      },
    ]);
  });

  it('reads an inactive definition without labels as none', () => {
    expect(labelsOf(sample('qemu-guest1-inactive.xml'))).toEqual([]);
  });

  it('reads static, static without relabel, and none labels', () => {
    expect(labelsOf(sample('qemu-seclabel-static-dac-inactive.xml'))).toEqual([
      { model: 'dac', type: 'static', label: '+107:+107', relabel: true, source: 'config' },
    ]);
    expect(labelsOf(sample('qemu-seclabel-static-norelabel-inactive.xml'))).toEqual([
      { model: 'dac', type: 'static', label: '+107:+107', relabel: false, source: 'config' },
    ]);
    expect(labelsOf(sample('qemu-seclabel-none-inactive.xml'))).toEqual([
      { model: 'none', type: 'none', relabel: false, source: 'config' },
    ]);
  });

  it('reads stacked selinux, apparmor and dac labels with per-disk overrides', () => {
    const config = parseDomainXmlDetails(sample('test-seclabels-selinux-inactive.xml'));
    expect(config.seclabels).toEqual([
      {
        model: 'selinux',
        type: 'dynamic',
        baseLabel: 'system_u:system_r:svirt_t:s0',
        relabel: true,
        source: 'config',
      },
      {
        model: 'apparmor',
        type: 'static',
        label: 'libvirt-68766b69-5a4d-4000-8000-00000000b001',
        relabel: false,
        source: 'config',
      },
      { model: 'dac', type: 'dynamic', relabel: true, source: 'config' },
    ]);
    expect(config.diskSeclabels).toEqual([
      { disk: 'vda', model: 'selinux', relabel: true, label: 'system_u:object_r:svirt_image_t:s0:c10,c20' },
    ]);
    const live = parseDomainXmlDetails(sample('test-seclabels-selinux-live.xml'));
    expect(live.seclabels.every((l) => l.source === 'live')).toBe(true);
    expect(live.diskSeclabels.map((l) => l.disk)).toEqual(['vda', 'vdb']);
    expect(
      parseDomainXmlDetails(sample('test-seclabels-selinux-live.xml'), { labelSource: 'config' }).seclabels[0]
        ?.source,
    ).toBe('config');
  });

  it('applies libvirt defaults and skips models the spec does not name', () => {
    const xml = `<domain><name>d</name><uuid>68766b69-0000-4000-8000-000000000001</uuid>
      <seclabel model='selinux'><label> spaced label </label></seclabel>
      <seclabel type='static' model='testSecurity'><label>x</label></seclabel>
      <seclabel type='weird' model='dac'/>
      <seclabel type='static' model='dac'><label>+0:+0</label></seclabel>
    </domain>`;
    expect(labelsOf(xml)).toEqual([
      { model: 'selinux', type: 'dynamic', label: ' spaced label ', relabel: true, source: 'config' },
      { model: 'dac', type: 'static', label: '+0:+0', relabel: false, source: 'config' },
    ]);
  });
});

describe('seclabelElement', () => {
  it('builds the accepted combinations', () => {
    expect(
      seclabelElement({ model: 'selinux', type: 'static', label: 'system_u:system_r:svirt_t:s0:c1,c2' }),
    ).toEqual({
      '@_type': 'static',
      '@_model': 'selinux',
      '@_relabel': 'no',
      label: 'system_u:system_r:svirt_t:s0:c1,c2',
    });
    expect(
      seclabelElement({ model: 'dac', type: 'static', label: '+107:+107', relabel: true }),
    ).toMatchObject({
      '@_relabel': 'yes',
    });
    expect(
      seclabelElement({ model: 'selinux', type: 'dynamic', baseLabel: 'system_u:system_r:svirt_t:s0' }),
    ).toEqual({
      '@_type': 'dynamic',
      '@_model': 'selinux',
      '@_relabel': 'yes',
      baselabel: 'system_u:system_r:svirt_t:s0',
    });
    expect(seclabelElement({ model: 'dac', type: 'none' })).toEqual({ '@_type': 'none', '@_model': 'dac' });
    // Output-only fields are ignored.
    expect(
      seclabelElement({
        model: 'dac',
        type: 'dynamic',
        label: '+999:+994',
        imageLabel: '+999:+994',
        enforcing: true,
        source: 'live',
      }),
    ).toEqual({ '@_type': 'dynamic', '@_model': 'dac', '@_relabel': 'yes' });
  });

  it.each<[string, SecurityLabel]>([
    ['tag model', { model: 'tag', type: 'static', label: 'x' }],
    ['unknown type', { model: 'dac', type: 'weird' as never }],
    ['static without label', { model: 'selinux', type: 'static' }],
    ['static with baseLabel', { model: 'selinux', type: 'static', label: 'a', baseLabel: 'b' }],
    ['dynamic without relabel', { model: 'selinux', type: 'dynamic', relabel: false }],
    ['none with label', { model: 'dac', type: 'none', label: '+0:+0' }],
    ['none with relabel', { model: 'dac', type: 'none', relabel: true }],
    ['model none with static', { model: 'none', type: 'static', label: 'x' }],
    ['empty label', { model: 'dac', type: 'static', label: '  ' }],
    ['control characters', { model: 'dac', type: 'static', label: 'a\nb' }],
    ['too long', { model: 'selinux', type: 'static', label: 'x'.repeat(4097) }],
  ])('rejects %s', (_what, label) => {
    expectInvalid(() => seclabelElement(label));
  });
});

describe('setDomainSeclabel', () => {
  const inactive = sample('qemu-rich-inactive.xml');

  it('replaces the label of the same model in place and keeps every other byte', () => {
    const out = setDomainSeclabel(inactive, {
      model: 'dac',
      type: 'static',
      label: '+107:+107',
      relabel: true,
    });
    const old = "<seclabel type='dynamic' model='dac' relabel='yes'/>";
    expect(inactive.split(old)).toHaveLength(2);
    expect(out).toBe(
      inactive.replace(
        old,
        '<seclabel type="static" model="dac" relabel="yes">\n    <label>+107:+107</label>\n  </seclabel>',
      ),
    );
    expect(labelsOf(out)).toEqual([
      { model: 'dac', type: 'static', label: '+107:+107', relabel: true, source: 'config' },
    ]);
    // The per-disk overrides and everything else read back the same.
    const a = parseDomainXmlDetails(inactive);
    const b = parseDomainXmlDetails(out);
    expect({ ...b, seclabels: [] }).toEqual({ ...a, seclabels: [] });
  });

  it('adds a label before </domain> when there is none', () => {
    const xml = sample('qemu-guest1-inactive.xml');
    const out = setDomainSeclabel(xml, { model: 'dac', type: 'dynamic' });
    expect(out).toBe(
      xml.replace(
        '  </devices>\n</domain>',
        '  </devices>\n  <seclabel type="dynamic" model="dac" relabel="yes"/>\n</domain>',
      ),
    );
  });

  it('adds a second model after the existing labels, and replace: all removes the others', () => {
    const xml = sample('test-seclabels-selinux-inactive.xml');
    const stacked = setDomainSeclabel(
      xml.replace(/\s*<seclabel type='static' model='apparmor'[\s\S]*?<\/seclabel>/, ''),
      {
        model: 'apparmor',
        type: 'dynamic',
      },
    );
    expect(labelsOf(stacked).map((l) => `${l.model}/${l.type}`)).toEqual([
      'selinux/dynamic',
      'dac/dynamic',
      'apparmor/dynamic',
    ]);
    const only = setDomainSeclabel(
      xml,
      { model: 'selinux', type: 'static', label: 'system_u:system_r:svirt_t:s0:c5,c9' },
      {
        replace: 'all',
      },
    );
    expect(labelsOf(only)).toEqual([
      {
        model: 'selinux',
        type: 'static',
        label: 'system_u:system_r:svirt_t:s0:c5,c9',
        relabel: false,
        source: 'config',
      },
    ]);
    expect(only.match(/<seclabel/g)).toHaveLength(2); // the domain label and the per-disk override of vda
  });

  it('keeps comments, odd quoting and unknown elements', () => {
    const xml = `<?xml version="1.0"?>
<!-- <seclabel model='dac'/> in a comment -->
<domain type="kvm">
  <name>x</name>
  <uuid>68766b69-0000-4000-8000-000000000001</uuid>
  <description>a &lt;seclabel&gt; "text" with a > sign</description>
  <seclabel type='dynamic' model="selinux" relabel='yes'><baselabel>a'b"c</baselabel></seclabel>
  <future attr='>'><seclabel type='static' model='dac'><label>nested, not top-level</label></seclabel></future>
  <seclabel type='dynamic' model='dac' relabel='yes'/>
</domain>`;
    const out = setDomainSeclabel(xml, { model: 'selinux', type: 'none' });
    expect(out).toBe(
      xml.replace(
        `<seclabel type='dynamic' model="selinux" relabel='yes'><baselabel>a'b"c</baselabel></seclabel>`,
        '<seclabel type="none" model="selinux"/>',
      ),
    );
  });

  it('escapes label text', () => {
    const out = setDomainSeclabel(sample('qemu-guest1-inactive.xml'), {
      model: 'apparmor',
      type: 'static',
      label: 'profile <&> "x"',
    });
    expect(out).toContain('<label>profile &lt;&amp;&gt; "x"</label>');
    expect(labelsOf(out)[0]?.label).toBe('profile <&> "x"');
  });

  it('refuses live XML, other documents and bad options', () => {
    expectInvalid(() => setDomainSeclabel(sample('qemu-guest1-live.xml'), { model: 'dac', type: 'dynamic' }));
    expect(() => setDomainSeclabel('<network/>', { model: 'dac', type: 'dynamic' })).toThrow(HvkitError);
    expect(() => setDomainSeclabel('<domain>', { model: 'dac', type: 'dynamic' })).toThrow(HvkitError);
    expect(() =>
      setDomainSeclabel(
        sample('qemu-guest1-inactive.xml'),
        { model: 'dac', type: 'dynamic' },
        { replace: 'x' as never },
      ),
    ).toThrow(TypeError);
    expectInvalid(() =>
      setDomainSeclabel(sample('qemu-guest1-inactive.xml'), { model: 'tag', type: 'none' }),
    );
  });
});

describe('liveSecurityLabels', () => {
  interface Captured {
    securityLabelList: { labels: { label: string; enforcing: number }[]; ret: number };
    securityLabel: { label: string; enforcing: number };
  }
  const models = (file: string) => parseCapabilitiesXml(sample(file)).secmodels.map((m) => m.model);

  it('merges the QEMU label list with the driver order and the live XML', () => {
    const captured = JSON.parse(sample('qemu-guest1-security-labels.json')) as Captured;
    expect(
      liveSecurityLabels({
        labels: captured.securityLabelList.labels,
        models: models('qemu-capabilities.xml'),
        xmlLabels: parseDomainXmlDetails(sample('qemu-guest1-live.xml')).seclabels,
      }),
    ).toEqual([
      // DAC and `none` have no enforcing state: libvirt's 0 for them means nothing, so it is left out.
      { model: 'none', type: 'none', source: 'live' },
      {
        model: 'dac',
        type: 'dynamic',
        label: '+999:+994',
        imageLabel: '+999:+994',
        relabel: true,
        source: 'live',
      },
    ]);
  });

  it('guesses the type without XML and skips models the spec does not name', () => {
    expect(
      liveSecurityLabels({
        labels: [
          { label: 'system_u:system_r:svirt_t:s0:c1,c2', enforcing: true },
          { label: '', enforcing: 0 },
        ],
        models: ['selinux', 'dac'],
      }),
    ).toEqual([
      {
        model: 'selinux',
        type: 'dynamic',
        label: 'system_u:system_r:svirt_t:s0:c1,c2',
        enforcing: true,
        source: 'live',
      },
      { model: 'dac', type: 'none', source: 'live' },
    ]);
    // AppArmor reports its profile's mode: 0 is complain mode, kept as enforcing: false.
    expect(
      liveSecurityLabels({
        labels: [{ label: 'libvirt-6695eb01-f6a4-8304-79aa-97f2502e193f', enforcing: 0 }],
        models: ['apparmor'],
      }),
    ).toEqual([
      {
        model: 'apparmor',
        type: 'dynamic',
        label: 'libvirt-6695eb01-f6a4-8304-79aa-97f2502e193f',
        enforcing: false,
        source: 'live',
      },
    ]);
    const test = JSON.parse(sample('test-default-security-labels.json')) as Captured;
    expect(test.securityLabelList.labels).toEqual([]);
    expect(
      liveSecurityLabels({ labels: [test.securityLabel], models: models('test-capabilities.xml') }),
    ).toEqual([]);
    expect(() => liveSecurityLabels({ labels: 'x', models: [] } as never)).toThrow(TypeError);
  });
});
