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

describe('misuse and refusals, with their messages', () => {
  const refusal = (fn: () => unknown): HvkitError => {
    try {
      fn();
    } catch (e) {
      expect(HvkitError.isInstance(e, 'INVALID_ARGUMENT'), String(e)).toBe(true);
      return e as HvkitError;
    }
    throw new Error('expected INVALID_ARGUMENT');
  };

  it('names what is wrong with a TypeError for values of the wrong type', () => {
    expect(() => quoteArg(1 as unknown as string)).toThrow('quoteArg: argument must be a string');
    expect(() => quoteArg(undefined as unknown as string)).toThrow('quoteArg: argument must be a string');
    expect(() => quoteArgv('ab' as unknown as string[])).toThrow(
      'quoteArgv: argv must be an array of strings',
    );
    for (const argv of [[], 'ls', ['ls', 1], [null]] as unknown as string[][]) {
      expect(() => buildRemoteCommand(argv), JSON.stringify(argv)).toThrow(
        'argv must be a non-empty array of strings',
      );
    }
    for (const cwd of ['', 1]) {
      expect(() => buildRemoteCommand(['ls'], { cwd } as never)).toThrow('cwd must be a non-empty string');
    }
    for (const env of [null, 'A=1']) {
      expect(() => buildRemoteCommand(['ls'], { env } as never)).toThrow('env must be an object');
    }
    expect(() => buildRemoteCommand(['ls'], { env: { A: 1 } } as never)).toThrow('env.A must be a string');
  });

  it('says why an argument or program cannot be run, naming the program', () => {
    const nul = refusal(() => quoteArg('a\0b'));
    expect(nul.message).toBe('command arguments cannot contain NUL bytes');
    expect(nul.operation).toBe('ssh.quote');
    const cases: [readonly string[], Record<string, unknown>, string][] = [
      [[''], {}, 'argv[0] (the program) must not be empty'],
      [['-rf', 'x'], {}, 'argv[0] (the program) must not start with "-"'],
      [['a=b'], { env: { X: '1' } }, 'argv[0] (the program) must not contain "=" when env is set'],
      [['env'], { env: { '1A': '1' } }, 'invalid environment variable name "1A"'],
    ];
    for (const [argv, options, message] of cases) {
      const error = refusal(() => buildRemoteCommand(argv, options));
      expect(error.message).toBe(message);
      expect(error.operation).toBe('ssh.exec');
      expect(error.details).toEqual({ program: argv[0] });
    }
  });

  it('writes no env prefix for an empty env, and accepts = in the program then', () => {
    expect(buildRemoteCommand(['a=b', 'x'], { env: {} })).toBe("exec 'a=b' 'x'");
    expect(buildRemoteCommand(['ls'], { env: { _A1: '' } })).toBe("exec env -- '_A1=' 'ls'");
  });
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
