import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { checkLvName, checkVgName, lvDevicePath, lvDmName, parseLvId } from './names';

const HOSTILE = [
  '',
  '.',
  '..',
  '-rf',
  '--yes',
  'a b',
  "a'b",
  'a"b',
  'a;touch /tmp/x',
  '$(id)',
  '`id`',
  'a|b',
  'a&b',
  'a>b',
  'a\nb',
  'a\0b',
  'a/b',
  'a\\b',
  '*',
  '~root',
  'ä',
  'x'.repeat(128),
];

function invalid(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    return HvkitError.isInstance(error, 'INVALID_ARGUMENT');
  }
  return false;
}

describe('LVM names', () => {
  it('accepts the characters LVM allows', () => {
    expect(checkVgName('vg0')).toBe('vg0');
    expect(checkVgName('a+b.c_d-e')).toBe('a+b.c_d-e');
    expect(checkLvName('_x')).toBe('_x');
    expect(checkLvName('x'.repeat(127))).toBe('x'.repeat(127));
    expect(parseLvId('vg0/guest1')).toEqual({ vg: 'vg0', lv: 'guest1' });
    expect(lvDevicePath(parseLvId('vg0/guest1'))).toBe('/dev/vg0/guest1');
  });

  it('refuses shell metacharacters, option-looking and reserved names with INVALID_ARGUMENT', () => {
    for (const name of HOSTILE) {
      expect(
        invalid(() => checkVgName(name)),
        JSON.stringify(name),
      ).toBe(true);
      expect(
        invalid(() => checkLvName(name)),
        JSON.stringify(name),
      ).toBe(true);
    }
    for (const name of ['snapshot1', 'pvmove0', 'a_tdata', 'x_tmeta', 'lvol0_pmspare', 'r_rimage_0']) {
      expect(
        invalid(() => checkLvName(name)),
        name,
      ).toBe(true);
    }
    for (const id of ['vg0', 'vg0/', '/lv', 'vg0/lv/x', 'vg 0/lv', 'vg0/$(id)', '../x']) {
      expect(
        invalid(() => parseLvId(id)),
        id,
      ).toBe(true);
    }
    expect(() => checkVgName(1)).toThrow(TypeError);
    expect(() => parseLvId({ vg: 'a' })).toThrow(TypeError);
  });
});

describe('lvDmName', () => {
  it('doubles the dashes inside each name, as LVM names its device-mapper devices', () => {
    // Seen in the lab VM: `dmsetup status dm--t--vg-my--data--snap` for dm-t-vg/my-data-snap.
    expect(lvDmName({ vg: 'dm-t-vg', lv: 'my-data-snap' })).toBe('dm--t--vg-my--data--snap');
    expect(lvDmName({ vg: 'vg0', lv: 'data' })).toBe('vg0-data');
    expect(lvDmName({ vg: 'a+b_c.d', lv: 'x--y' })).toBe('a+b_c.d-x----y');
  });
});
