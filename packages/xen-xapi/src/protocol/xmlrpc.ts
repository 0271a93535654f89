/**
 * XML-RPC as XAPI speaks it, on core's one XML tokenizer (hardened: size and depth bounds, no DTDs, no
 * entities beyond XML's five). Decoding keeps XAPI's conventions: an untyped `<value>text</value>` is a
 * string (XAPI sends strings and 64-bit ints that way), `<i4>`/`<int>`/`<i8>` beyond 2^53 stay exact as
 * digit strings, `<double>` accepts OCaml's `nan`/`inf`, every date-time form XAPI emits is read, and an
 * empty `<value/>` is `""`. Text is never trimmed. Anything else fails with `PROTOCOL`.
 */

import { XmlTokenizer, xmlEscape } from '@hvkit/core';
import { formatXapiDate, parseXapiDate, setOwn, type WireValue, XapiFloat } from './wire';

/** Largest XML-RPC document decoded (the client's body bound is lower). */
export const XMLRPC_MAX_BYTES = 64 * 1024 * 1024;
/** Deepest element nesting decoded. */
export const XMLRPC_MAX_DEPTH = 128;

/** Options of the decoders. */
export interface XmlRpcDecodeOptions {
  operation?: string;
  maxBytes?: number;
}

/** A decoded method call (the simulator's side). */
export interface XmlRpcCall {
  method: string;
  params: unknown[];
}

/** A decoded response: the value, or an XML-RPC `<fault>` (XAPI itself reports errors inside the value). */
export type XmlRpcResponse = { value: unknown } | { fault: { code: unknown; message: unknown } };

class Reader {
  readonly xml: XmlTokenizer;
  constructor(text: string, options: XmlRpcDecodeOptions) {
    this.xml = new XmlTokenizer(text, {
      maxBytes: options.maxBytes ?? XMLRPC_MAX_BYTES,
      maxDepth: XMLRPC_MAX_DEPTH,
      label: 'Invalid XML-RPC',
      adapter: 'xen-xapi',
      operation: options.operation,
    });
  }

  /** The next token that is not whitespace text (other text is an error). */
  next(): 'start' | 'end' | 'eof' {
    for (;;) {
      const t = this.xml.next();
      if (t !== 'text') return t;
      if (!/^[ \t\n\r]*$/.test(this.xml.text)) this.xml.fail('unexpected text');
    }
  }

  start(name: string): void {
    if (this.next() !== 'start' || this.xml.name !== name) this.xml.fail(`expected <${name}>`);
  }

  end(name: string): void {
    if (this.next() !== 'end' || this.xml.name !== name) this.xml.fail(`expected </${name}>`);
  }

  /** Text up to the end tag of `name` (no child elements). */
  text(name: string): string {
    let out = '';
    for (;;) {
      const t = this.xml.next();
      if (t === 'text') out += this.xml.text;
      else if (t === 'end' && this.xml.name === name) return out;
      else this.xml.fail(`<${name}> holds only text`);
    }
  }

  /** A `<value>` whose start tag was just read. */
  value(): unknown {
    let text = '';
    for (;;) {
      const t = this.xml.next();
      if (t === 'text') {
        text += this.xml.text;
        continue;
      }
      if (t === 'end') return text; // untyped: a string, untrimmed ('' for <value/>)
      if (t !== 'start') this.xml.fail('unterminated <value>');
      if (!/^[ \t\n\r]*$/.test(text)) this.xml.fail('text beside a typed value');
      const v = this.typed(this.xml.name);
      this.end('value');
      return v;
    }
  }

  private typed(type: string): unknown {
    const xml = this.xml;
    switch (type) {
      case 'string':
        return this.text('string');
      case 'int':
      case 'i4':
      case 'i8': {
        const t = this.text(type).trim();
        if (!/^[+-]?\d{1,40}$/.test(t)) xml.fail(`<${type}> is not an integer`);
        const n = Number(t);
        return Number.isSafeInteger(n) ? n : t.replace(/^\+/, '');
      }
      case 'boolean': {
        const t = this.text('boolean').trim();
        if (t === '1' || t === 'true') return true;
        if (t === '0' || t === 'false') return false;
        return xml.fail('<boolean> is not 0 or 1');
      }
      case 'double': {
        const t = this.text('double').trim();
        const lower = t.toLowerCase();
        if (lower === 'nan' || lower === '-nan') return Number.NaN;
        if (lower === 'inf' || lower === 'infinity' || lower === '+inf') return Number.POSITIVE_INFINITY;
        if (lower === '-inf' || lower === '-infinity') return Number.NEGATIVE_INFINITY;
        if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(t)) xml.fail('<double> is not a number');
        return Number(t);
      }
      case 'dateTime.iso8601': {
        const t = this.text(type);
        try {
          return parseXapiDate(t) ?? new Date(0);
        } catch {
          return xml.fail('<dateTime.iso8601> is not a date-time');
        }
      }
      case 'base64': {
        const t = this.text('base64').replace(/[ \t\n\r]/g, '');
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) xml.fail('<base64> is not base64');
        return new Uint8Array(Buffer.from(t, 'base64'));
      }
      case 'nil': {
        if (this.next() !== 'end') xml.fail('<nil> must be empty');
        return null;
      }
      case 'struct': {
        const out: Record<string, unknown> = {};
        for (;;) {
          const t = this.next();
          if (t === 'end') return out;
          if (t !== 'start' || xml.name !== 'member') xml.fail('expected <member>');
          this.start('name');
          const key = this.text('name');
          this.start('value');
          setOwn(out, key, this.value());
          this.end('member');
        }
      }
      case 'array': {
        const out: unknown[] = [];
        const t = this.next();
        if (t === 'end') return out; // <array/> (lenient)
        if (t !== 'start' || xml.name !== 'data') xml.fail('expected <data>');
        for (;;) {
          const u = this.next();
          if (u === 'end') break;
          if (u !== 'start' || xml.name !== 'value') xml.fail('expected <value>');
          out.push(this.value());
        }
        this.end('array');
        return out;
      }
      default:
        return xml.fail(`unknown value type <${type}>`);
    }
  }

  eof(): void {
    if (this.next() !== 'eof') this.xml.fail('unexpected element');
  }
}

/**
 * Decodes a `<methodResponse>`.
 *
 * @throws HvkitError `PROTOCOL` for anything that is not a well-formed XML-RPC response.
 */
export function decodeXmlRpcResponse(text: string, options: XmlRpcDecodeOptions = {}): XmlRpcResponse {
  const r = new Reader(text, options);
  r.start('methodResponse');
  const t = r.next();
  if (t !== 'start') return r.xml.fail('empty <methodResponse>');
  if (r.xml.name === 'fault') {
    r.start('value');
    const v = r.value() as Record<string, unknown>;
    r.end('fault');
    r.end('methodResponse');
    r.eof();
    const fault = typeof v === 'object' && v !== null ? v : {};
    return { fault: { code: fault.faultCode, message: fault.faultString } };
  }
  if (r.xml.name !== 'params') return r.xml.fail('expected <params> or <fault>');
  r.start('param');
  r.start('value');
  const value = r.value();
  r.end('param');
  r.end('params');
  r.end('methodResponse');
  r.eof();
  return { value };
}

/**
 * Decodes a `<methodCall>` (what the simulator receives).
 *
 * @throws HvkitError `PROTOCOL` for anything that is not a well-formed XML-RPC call.
 */
export function decodeXmlRpcCall(text: string, options: XmlRpcDecodeOptions = {}): XmlRpcCall {
  const r = new Reader(text, options);
  r.start('methodCall');
  r.start('methodName');
  const method = r.text('methodName').trim();
  if (!/^[A-Za-z0-9_.]{1,200}$/.test(method)) r.xml.fail('bad <methodName>');
  const params: unknown[] = [];
  let t = r.next();
  if (t === 'start' && r.xml.name === 'params') {
    for (;;) {
      const u = r.next();
      if (u === 'end') break;
      if (u !== 'start' || (r.xml.name as string) !== 'param') r.xml.fail('expected <param>');
      r.start('value');
      params.push(r.value());
      r.end('param');
    }
    t = r.next();
  }
  if (t !== 'end' || r.xml.name !== 'methodCall') r.xml.fail('expected </methodCall>');
  r.eof();
  return { method, params };
}

/**
 * Decodes one `<value>` fragment, as XAPI puts into `task.result` (`<value>OpaqueRef:…</value>`); an empty
 * string (a void result) is `""`.
 *
 * @throws HvkitError `PROTOCOL` for anything else.
 */
export function decodeXmlRpcValue(fragment: string, options: XmlRpcDecodeOptions = {}): unknown {
  if (fragment.trim() === '') return '';
  const r = new Reader(fragment, options);
  r.start('value');
  const v = r.value();
  r.eof();
  return v;
}

/**
 * One value as XML-RPC, the way XAPI writes it: strings and integers untyped (`<value>42</value>`), floats as
 * `<double>`, booleans as `<boolean>1</boolean>`, dates as `<dateTime.iso8601>` in XAPI's compact form.
 * With `typedStrings` (a client's requests), strings are `<string>` and integers `<string>` too, as XO sends
 * them.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for text XML cannot carry (NUL, most control characters).
 */
export function encodeXmlRpcValue(value: WireValue | undefined, typedStrings = false): string {
  if (value === undefined || value === null) return '<value><nil/></value>';
  if (typeof value === 'string')
    return typedStrings
      ? `<value><string>${xmlEscape(value)}</string></value>`
      : `<value>${xmlEscape(value)}</value>`;
  if (typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value)))
    return typedStrings ? `<value><string>${value}</string></value>` : `<value>${value}</value>`;
  if (typeof value === 'number' || value instanceof XapiFloat)
    return `<value><double>${formatDouble(typeof value === 'number' ? value : value.value)}</double></value>`;
  if (typeof value === 'boolean') return `<value><boolean>${value ? 1 : 0}</boolean></value>`;
  if (value instanceof Date)
    return `<value><dateTime.iso8601>${formatXapiDate(value)}</dateTime.iso8601></value>`;
  if (value instanceof Uint8Array)
    return `<value><base64>${Buffer.from(value).toString('base64')}</base64></value>`;
  if (Array.isArray(value))
    return `<value><array><data>${value.map((v) => encodeXmlRpcValue(v, typedStrings)).join('')}</data></array></value>`;
  let members = '';
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    members += `<member><name>${xmlEscape(k)}</name>${encodeXmlRpcValue(v as WireValue, typedStrings)}</member>`;
  }
  return `<value><struct>${members}</struct></value>`;
}

function formatDouble(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Number.POSITIVE_INFINITY) return 'inf';
  if (n === Number.NEGATIVE_INFINITY) return '-inf';
  return String(n);
}

/** A `<methodCall>` (the client's side): strings and integers typed as `<string>`, as XO sends them. */
export function encodeXmlRpcCall(method: string, params: readonly WireValue[]): string {
  return `<?xml version="1.0"?><methodCall><methodName>${xmlEscape(method)}</methodName><params>${params
    .map((p) => `<param>${encodeXmlRpcValue(p, true)}</param>`)
    .join('')}</params></methodCall>`;
}

/** A `<methodResponse>` carrying `value` (the simulator's side). */
export function encodeXmlRpcResponse(value: WireValue): string {
  return `<?xml version="1.0"?><methodResponse><params><param>${encodeXmlRpcValue(value)}</param></params></methodResponse>`;
}
