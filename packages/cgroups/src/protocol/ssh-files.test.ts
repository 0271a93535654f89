import { describe, expect, it } from 'vitest';
import { errnoFromMessage, sshCgroupFiles } from './ssh-files';

describe('sshCgroupFiles', () => {
  it("reads the errno from dd's messages (measured on this machine's cgroupfs)", () => {
    expect(
      errnoFromMessage("dd: error writing '/sys/fs/cgroup/cpu/x/cpu.cfs_quota_us': Invalid argument\n"),
    ).toBe('EINVAL');
    expect(
      errnoFromMessage(
        "dd: error writing '/sys/fs/cgroup/blkio/x/blkio.throttle.read_bps_device': No such device",
      ),
    ).toBe('ENODEV');
    expect(errnoFromMessage("dd: failed to open '/x': No such file or directory")).toBe('ENOENT');
    expect(errnoFromMessage("dd: error writing '/x': Device or resource busy")).toBe('EBUSY');
    expect(errnoFromMessage("dd: error writing '/x': Numerical result out of range")).toBe('ERANGE');
    expect(errnoFromMessage('something else')).toBeUndefined();
  });

  it('is a TypeError without files and exec', () => {
    expect(() => sshCgroupFiles({} as never)).toThrow(TypeError);
    expect(() => sshCgroupFiles({ files: { readFile() {} } } as never)).toThrow(TypeError);
  });
});
