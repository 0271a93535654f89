/** The parts of Xen Orchestra's `xen-api` client (plain JavaScript, no types) the tests use. */
declare module 'xen-api' {
  export interface XapiOptions {
    url: string;
    auth: { user: string; password: string };
    watchEvents?: boolean | string[];
    allowUnauthorized?: boolean;
    readOnly?: boolean;
  }
  export class Xapi {
    constructor(options: XapiOptions);
    readonly status: string;
    /** The session ref of the connection (the HTTP endpoints take it as `session_id`). */
    readonly sessionId: string;
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    call(method: string, ...args: unknown[]): Promise<unknown>;
  }
}
