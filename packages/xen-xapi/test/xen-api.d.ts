/** The parts of Xen Orchestra's `xen-api` client (plain JavaScript, no types) the tests use. */
declare module 'xen-api' {
  export interface XapiOptions {
    url: string;
    auth: { user: string; password: string };
    watchEvents?: boolean | string[];
    allowUnauthorized?: boolean;
    readOnly?: boolean;
    /** `auto` (default): JSON-RPC on /jsonrpc, XML-RPC on /xmlrpc once the host answers text/xml. */
    transport?: 'auto' | 'json-rpc' | 'xml-rpc';
  }
  export class Xapi {
    constructor(options: XapiOptions);
    readonly status: string;
    /** The session ref of the connection (the HTTP endpoints take it as `session_id`). */
    readonly sessionId: string;
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    call(method: string, ...args: unknown[]): Promise<unknown>;
    /** Resolves once the initial fetch of the event cache is done (with `watchEvents`). */
    readonly objectsFetched: Promise<void>;
    /** Waits until every event up to now was seen; with a ref, resolves to that object from the cache. */
    barrier(ref?: string): Promise<unknown>;
  }
}
