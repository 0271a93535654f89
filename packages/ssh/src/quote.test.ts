import { execFileSync } from 'node:child_process';
import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { buildRemoteCommand, quoteArg, quoteArgv } from './quote';

const HOSTILE = [
  "a'b",
  "''",
  '$(touch /tmp/hvkit-quote-pwned)',
  '`id`',
  '; rm -rf x',
  'x\ny',
  '--leading-dash',
  '*',
  '~',
  '~root',
  'back\\slash\\',
  "\\'",
  'ünïcødé ✓',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, kept literal
  '$HOME ${PATH} $1',
  '"double"',
  '&& || | > < >> 2>&1',
  '\t tabs and  spaces ',
  '',
  '!event',
  '#not a comment',
];

/** Runs a command string through a real POSIX shell, the way sshd hands it to the login shell. */
function viaShell(shell: string, command: string): string[] {
  const out = execFileSync(shell, ['-c', command], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

describe('quoteArg', () => {
  it("wraps in single quotes and escapes single quotes as '\\''", () => {
    expect(quoteArg('abc')).toBe("'abc'");
    expect(quoteArg("a'b")).toBe("'a'\\''b'");
    expect(quoteArg('')).toBe("''");
    expect(quoteArgv(['a', "b'c", ''])).toBe("'a' 'b'\\''c' ''");
  });

  it('rejects NUL with INVALID_ARGUMENT and non-strings with TypeError', () => {
    try {
      quoteArg('a\0b');
      expect.unreachable();
    } catch (e) {
      expect(HvkitError.isInstance(e, 'INVALID_ARGUMENT')).toBe(true);
    }
    expect(() => quoteArg(1 as unknown as string)).toThrow(TypeError);
    expect(() => quoteArgv('a' as unknown as string[])).toThrow(TypeError);
  });

  for (const shell of ['sh', 'bash']) {
    it(`lets every hostile argument through ${shell} verbatim`, () => {
      const got = viaShell(shell, `printf '%s\\0' ${quoteArgv(HOSTILE)}`);
      expect(got).toEqual(HOSTILE);
    });
  }
});

describe('buildRemoteCommand', () => {
  it('execs the program with every argument quoted', () => {
    expect(buildRemoteCommand(['ls', '-l', 'a b'])).toBe("exec 'ls' '-l' 'a b'");
    const got = viaShell('sh', buildRemoteCommand(['printf', '%s\\0', ...HOSTILE]));
    expect(got).toEqual(HOSTILE);
  });

  it('passes env as a quoted env -- prefix, values verbatim', () => {
    const cmd = buildRemoteCommand(['sh', '-c', 'printf "%s\\0" "$A" "$B_2"'], {
      env: { A: "it's $(x)", B_2: 'a\nb' },
    });
    expect(cmd.startsWith("exec env -- 'A=it'\\''s $(x)' 'B_2=a\nb' ")).toBe(true);
    expect(viaShell('sh', cmd)).toEqual(["it's $(x)", 'a\nb']);
  });

  it('changes directory first, even to a name starting with a dash', () => {
    const cmd = buildRemoteCommand(['sh', '-c', 'printf "%s\\0" "$PWD"'], { cwd: '/tmp' });
    expect(viaShell('sh', cmd)).toEqual(['/tmp']);
    expect(buildRemoteCommand(['pwd'], { cwd: '-x' })).toBe("cd './-x' && exec 'pwd'");
  });

  it('rejects what cannot be run safely', () => {
    const invalid = (fn: () => unknown) => {
      try {
        fn();
        expect.unreachable();
      } catch (e) {
        expect(HvkitError.isInstance(e, 'INVALID_ARGUMENT')).toBe(true);
      }
    };
    invalid(() => buildRemoteCommand(['']));
    invalid(() => buildRemoteCommand(['-rf']));
    invalid(() => buildRemoteCommand(['a=b'], { env: { X: '1' } }));
    invalid(() => buildRemoteCommand(['env'], { env: { 'BAD-NAME': '1' } }));
    invalid(() => buildRemoteCommand(['echo', 'a\0b']));
    expect(() => buildRemoteCommand([])).toThrow(TypeError);
    expect(() => buildRemoteCommand([1 as unknown as string])).toThrow(TypeError);
    // Without env, '=' in the program name is just a name.
    expect(buildRemoteCommand(['a=b'])).toBe("exec 'a=b'");
  });
});
