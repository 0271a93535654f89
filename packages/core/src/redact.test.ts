import { describe, expect, it } from 'vitest';
import { hvkitError } from './errors/hvkit-error';
import { REDACTED, redact, redactError, redactPatterns, redactSecrets } from './redact';

describe('redactSecrets', () => {
  it('replaces every occurrence of each secret', () => {
    expect(redactSecrets('pw hunter2 and hunter2 again', ['hunter2'])).toBe(
      `pw ${REDACTED} and ${REDACTED} again`,
    );
  });

  it('also replaces URL-encoded and base64 forms', () => {
    const secret = 'p@ss word/+';
    const encoded = encodeURIComponent(secret);
    const b64 = Buffer.from(secret).toString('base64');
    const out = redactSecrets(`url ?pw=${encoded} form pw=${encoded.replace(/%20/g, '+')} b64 ${b64}`, [
      secret,
    ]);
    expect(out).not.toContain(encoded);
    expect(out).not.toContain(b64);
    expect(out).not.toContain('p%40ss');
    expect(out.match(/\[REDACTED\]/g)).toHaveLength(3);
  });

  it('handles regex metacharacters and overlapping secrets (longest first)', () => {
    expect(redactSecrets('a.b*c and a.b', ['a.b', 'a.b*c'])).toBe(`${REDACTED} and ${REDACTED}`);
    expect(redactSecrets('a+b', ['(x)', 'a+b'])).toBe(REDACTED);
  });

  it('also replaces XML-escaped and JSON-escaped forms', () => {
    const secret = `p&w<r>d"q'`;
    const xml = `<faultstring>bad login p&amp;w&lt;r&gt;d&quot;q&apos; and p&amp;w&lt;r&gt;d"q' and p&#38;w&#60;r&#62;d&#34;q&#39;</faultstring>`;
    const json = JSON.stringify({ msg: `wrong ${secret}` });
    const out = redactSecrets(`${xml} ${json}`, [secret]);
    expect(out).not.toMatch(/p&amp;w|p&#38;w|p&w|w&lt;r|w<r/);
    expect(out.match(/\[REDACTED\]/g)).toHaveLength(4);
  });

  it('ignores empty and missing secrets', () => {
    expect(redactSecrets('text', ['', undefined, null])).toBe('text');
    expect(redactSecrets('', ['x'])).toBe('');
  });
});

describe('redactPatterns', () => {
  it.each([
    ['Authorization: Basic dXNlcjpwYXNz', `Authorization: Basic ${REDACTED}`],
    ['authorization: Bearer eyJhbGciOi.abc.def', `authorization: Bearer ${REDACTED}`],
    ['Proxy-Authorization: Digest username="a", response="b"', `Proxy-Authorization: Digest ${REDACTED}`],
    ['Authorization: sometoken', `Authorization: ${REDACTED}`],
    ['Cookie: vmware_soap_session="52a1"; other=1', `Cookie: ${REDACTED}`],
    ['set-cookie: session=abc; Path=/; HttpOnly', `set-cookie: ${REDACTED}`],
    ['login?user=root&password=hunter2&x=1', `login?user=root&password=${REDACTED}&x=1`],
    ['password=hunter2', `password=${REDACTED}`],
    ['--password "two words" next', `--password ${REDACTED} next`],
    ['cmd --token=abc --verbose', `cmd --token=${REDACTED} --verbose`],
    ['passwd: s3cret', `passwd: ${REDACTED}`],
    ['api_key=abc123 token=xyz', `api_key=${REDACTED} token=${REDACTED}`],
    ['{"userName":"root","password":"hu\\"nter2"}', `{"userName":"root","password":"${REDACTED}"}`],
    ['{"session_id": "OpaqueRef:1234"}', `{"session_id": "${REDACTED}"}`],
    ['{"Authorization":"Basic abc"}', `{"Authorization":"${REDACTED}"}`],
    [
      '<userName>root</userName><password>hunter2</password>',
      `<userName>root</userName><password>${REDACTED}</password>`,
    ],
    [
      '<urn:password xsi:type="xsd:string">pw</urn:password>',
      `<urn:password xsi:type="xsd:string">${REDACTED}</urn:password>`,
    ],
    ['ssh://root:hunter2@host:22/path', `ssh://root:${REDACTED}@host:22/path`],
    ['https://user:p%40ss@vcenter.example/sdk', `https://user:${REDACTED}@vcenter.example/sdk`],
    ['vmware_soap_session="52a1b2c3"', `vmware_soap_session=${REDACTED}`],
    [
      'session cookie vmware_soap_session=52a1b2c3; Path=/',
      `session cookie vmware_soap_session=${REDACTED}; Path=/`,
    ],
    ['<password><![CDATA[hun<ter>2]]></password>', `<password>${REDACTED}</password>`],
    [
      '<ns:password xsi:type="xsd:string"><![CDATA[a]]>b<![CDATA[c]]></ns:password>',
      `<ns:password xsi:type="xsd:string">${REDACTED}</ns:password>`,
    ],
  ])('%s', (input, expected) => {
    expect(redactPatterns(input)).toBe(expected);
  });

  it('leaves ordinary text alone', () => {
    for (const text of [
      'guest web-1 not found',
      'bypass=1 compass=north',
      'https://vcenter.example/sdk',
      'ssh://root@host',
      'memory.max: 1073741824',
    ]) {
      expect(redactPatterns(text)).toBe(text);
    }
  });

  it.each([
    'password',
    'passwd',
    'pwd',
    'pass',
    'passphrase',
    'secret',
    'client_secret',
    'token',
    'access_token',
    'refresh_token',
    'id_token',
    'api_key',
    'apikey',
    'api-key',
    'private_key',
    'privatekey',
    'session_id',
    'sessionid',
    'session',
    'x-api-key',
    'x-auth-token',
    'vmware-api-session-id',
  ])('hides the value of %s as key=value, header, JSON, XML and flag', (key) => {
    const value = 's3cr3t-V4lue';
    for (const text of [
      `${key}=${value}`,
      `GET /x?a=1&${key}=${value}&b=2`,
      `${key.toUpperCase()}: ${value}`,
      `{"${key}": "${value}"}`,
      `<${key}>${value}</${key}>`,
      `run --${key} ${value}`,
      `run --${key}=${value}`,
    ]) {
      const out = redactPatterns(text);
      expect(out, text).not.toContain(value);
      expect(out, text).toContain(REDACTED);
    }
  });

  it('hides header-like values whole in JSON and XML', () => {
    for (const key of ['authorization', 'proxy-authorization', 'cookie', 'set-cookie']) {
      expect(redactPatterns(`{"${key}":"a b"}`)).toBe(`{"${key}":"${REDACTED}"}`);
      expect(redactPatterns(`<${key}>a b</${key}>`)).toBe(`<${key}>${REDACTED}</${key}>`);
    }
  });

  it('handles multi-line header dumps line by line', () => {
    const dump = 'GET / HTTP/1.1\r\nAuthorization: Basic abc\r\nAccept: */*\r\nCookie: a=b\r\n';
    expect(redactPatterns(dump)).toBe(
      `GET / HTTP/1.1\r\nAuthorization: Basic ${REDACTED}\r\nAccept: */*\r\nCookie: ${REDACTED}\r\n`,
    );
  });
});

describe('redact', () => {
  it('applies both', () => {
    expect(redact('user root pw OpenSesame, Authorization: Basic xyz', ['OpenSesame'])).toBe(
      `user root pw ${REDACTED}, Authorization: Basic ${REDACTED}`,
    );
  });
});

describe('redactError', () => {
  it('removes known secrets in place from an HvkitError: message, backendMessage, stack, details and causes', () => {
    const root = new Error('socket said hunter2');
    const middle = new Error('wrapped hunter2', { cause: root });
    const error = hvkitError('AUTH_FAILED', 'login refused for hunter2', {
      backendMessage: 'InvalidLogin: hunter2',
      details: { fault: { userName: 'root', text: 'pw hunter2' }, list: ['hunter2'] },
      cause: middle,
    });
    expect(redactError(error, ['hunter2'])).toBe(error);
    expect(error.message).toBe(`login refused for ${REDACTED}`);
    expect(error.backendMessage).toBe(`InvalidLogin: ${REDACTED}`);
    expect(error.stack).not.toContain('hunter2');
    expect(JSON.stringify(error)).not.toContain('hunter2');
    expect(error.cause).toBe(middle);
    expect(middle.message).toBe(`wrapped ${REDACTED}`);
    expect(root.message).toBe(`socket said ${REDACTED}`);
    expect(root.stack).not.toContain('hunter2');
  });

  it('bounds and cleans what it rewrites, survives cycles and leaves other values alone', () => {
    const a = new Error('a hunter2') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(redactError(b, ['hunter2'])).toBe(b);
    expect(a.message).toBe(`a ${REDACTED}`);
    expect(redactError('text', ['x'])).toBe('text');
    expect(redactError(undefined, ['x'])).toBeUndefined();
    const frozen = Object.freeze(new Error('frozen hunter2'));
    expect(() => redactError(frozen, ['hunter2'])).not.toThrow();
  });
});
