/**
 * The simulator's XAPI: sessions, the generic class messages (`get_all_records`, `get_record`,
 * `get_by_uuid`, `get_all`, `get_by_name_label`, field getters), the mutators limits and labels use with
 * XAPI's checks (power state, memory constraint order, duplicate map keys), `Async.*` tasks and
 * `task.cancel`. Failures are XAPI's error codes with their parameters.
 */

import { randomUUID } from 'node:crypto';
import { fieldOf, fieldsOf, type XapiFieldType } from '../protocol/datamodel';
import { normaliseValue } from '../protocol/values';
import { setOwn, type WireValue } from '../protocol/wire';
import { encodeXmlRpcValue } from '../protocol/xmlrpc';
import { rowToWire, type SimDb, type SimRow, toWire } from './db';
import { SimDisks } from './disks';

/** An XAPI failure: `[code, ...params]`. */
export class XapiFailure extends Error {
  readonly description: string[];
  constructor(code: string, ...params: string[]) {
    super(code);
    this.description = [code, ...params];
  }
}

/** Settings of the simulated API. */
export interface SimApiSettings {
  /** Events kept for `event.from` (default 1000); a token older than the oldest kept gets `EVENTS_LOST`. */
  eventLogSize?: number;
  /** Start hung: calls are accepted but not answered until {@link SimApi.hang}(false). */
  hung?: boolean;
  username: string;
  password: string;
  /** When set, every login is answered `HOST_IS_SLAVE [slaveOf]`. */
  slaveOf?: string;
  /** How long an `Async.*` task stays pending before it runs, ms (0: it has finished when the call returns). */
  taskDelayMs: number;
  /** The clock of the times the simulator records (snapshot times, task times); default the wall clock. */
  clock?: () => Date;
}

interface Session {
  username: string;
  originator: string;
}

/** One entry of the event log (`event.from`'s event record). */
interface SimEvent {
  id: number;
  timestamp: Date;
  class: string;
  operation: 'add' | 'mod' | 'del';
  ref: string;
  obj_uuid: string;
  snapshot: WireValue;
}

/** A token: the log position, tied to this simulator run (a restarted simulator answers EVENTS_LOST). */
function eventToken(run: string, id: number): string {
  return `${String(id).padStart(20, '0')},${run}`;
}

/** True for messages that change nothing (getters, sessions, events, method lists). */
function isReadOnly(method: string): boolean {
  const name = method.slice(method.indexOf('.') + 1);
  return name.startsWith('get_') || /^(session|event|system)\./.test(method) || method.startsWith('Async.');
}

/** A deterministic UUID for the n-th object the simulator creates (so recordings repeat exactly). */
function madeUuid(kind: number, n: number): string {
  return `00000000-5a5a-4${String(kind).padStart(3, '0')}-8000-${String(n).padStart(12, '0')}`;
}

const MUTABLE_MAPS: Readonly<Record<string, readonly string[]>> = {
  VM: ['VCPUs_params', 'other_config', 'platform', 'xenstore_data', 'blocked_operations'],
  VIF: ['qos_algorithm_params', 'other_config'],
  VBD: ['qos_algorithm_params', 'other_config'],
  pool: ['other_config'],
  host: ['other_config'],
  network: ['other_config'],
  SR: ['other_config'],
  VDI: ['other_config'],
};
const TAGGED = new Set(['VM', 'pool', 'host', 'network', 'SR', 'VDI']);

/** The messages backups use (snapshots, revert, destroy, clone, names), with XAPI's checks. */
const BACKUP_METHODS: readonly string[] = [
  'VM.snapshot',
  'VM.checkpoint',
  'VM.revert',
  'VM.destroy',
  'VM.clone',
  'VM.set_name_label',
  'VM.set_is_a_template',
  'VDI.snapshot',
  'VDI.destroy',
  'VDI.set_name_label',
  'VBD.create',
  'VBD.destroy',
];

/** The simulated API over one database. */
export class SimApi {
  readonly db: SimDb;
  readonly settings: SimApiSettings;
  readonly #sessions = new Map<string, Session>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #tasks = 0;
  #made = 0;
  /** The disk contents of every VDI (see `disks.ts`). */
  readonly disks: SimDisks = new SimDisks();
  #domid = 0;
  #lastSession = '';
  readonly #events: SimEvent[] = [];
  #eventId = 0;
  readonly #runId = randomUUID().slice(0, 8);
  readonly #eventWaiters = new Set<() => void>();
  #hung = false;
  #closed = false;
  readonly #held = new Set<{ resolve: () => void; reject: (e: Error) => void }>();

  constructor(db: SimDb, settings: SimApiSettings) {
    this.db = db;
    this.settings = settings;
    db.table('task');
    this.#hung = settings.hung === true;
    for (const vm of db.table('VM').values())
      if (typeof vm.domid === 'number') this.#domid = Math.max(this.#domid, vm.domid);
  }

  /** Ends every session, as a toolstack restart does: the next call with one gets `SESSION_INVALID`. */
  invalidateSessions(): void {
    this.#sessions.clear();
  }

  /** How many sessions are open. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Stops pending task timers, ends blocked `event.from` calls and drops held calls. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    for (const wake of this.#eventWaiters) wake();
    for (const h of this.#held) h.reject(new Error('simulator closed'));
    this.#held.clear();
  }

  /**
   * Hangs (true) or resumes (false) the simulated host: while hung every call is accepted but answered
   * only after it resumes, as a stopped (SIGSTOP) toolstack would.
   */
  hang(hung: boolean): void {
    this.#hung = hung;
    if (hung) return;
    for (const h of this.#held) h.resolve();
    this.#held.clear();
  }

  #unhung(): Promise<void> {
    if (!this.#hung) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#held.add({ resolve, reject });
    });
  }

  /**
   * Runs one message as the HTTP side does: {@link call}, but `event.from` blocks up to its timeout for an
   * event, and nothing is answered while the host is hung.
   *
   * @throws XapiFailure for every XAPI error.
   */
  async callAsync(method: string, params: readonly unknown[]): Promise<WireValue> {
    await this.#unhung();
    let result: WireValue;
    if (method === 'event.from') {
      const deadline = Date.now() + this.#eventFromArgs(params).timeoutMs;
      for (;;) {
        result = this.call(method, params);
        const events = (result as { events: unknown[] }).events;
        const left = deadline - Date.now();
        if (events.length > 0 || left <= 0) break;
        if (this.#closed) throw new Error('simulator closed');
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            this.#eventWaiters.delete(done);
            resolve();
          };
          const timer = setTimeout(done, left);
          timer.unref();
          this.#eventWaiters.add(done);
        });
      }
    } else {
      result = this.call(method, params);
    }
    await this.#unhung();
    return result;
  }

  /** Appends an event on `ref` of `cls` (its current record, or `last` for a deleted one). */
  #emit(cls: string, operation: SimEvent['operation'], ref: string, last?: SimRow): void {
    const row = last ?? this.db.table(cls).get(ref);
    if (!row) return;
    this.#events.push({
      id: ++this.#eventId,
      timestamp: new Date(),
      class: cls.toLowerCase(),
      operation,
      ref,
      obj_uuid: typeof row.uuid === 'string' ? row.uuid : '',
      snapshot: rowToWire(cls, row),
    });
    const max = this.settings.eventLogSize ?? 1000;
    if (this.#events.length > max) this.#events.splice(0, this.#events.length - max);
    for (const wake of [...this.#eventWaiters]) wake();
  }

  /** Every ref per class, to tell what a mutator added or removed. */
  #refs(): Map<string, Map<string, SimRow>> {
    const out = new Map<string, Map<string, SimRow>>();
    for (const [cls, table] of this.db.tables) out.set(cls, new Map(table));
    return out;
  }

  /** Events for what a mutator did: rows added and removed, and a `mod` of the object it was called on. */
  #changed(method: string, target: unknown, before: Map<string, Map<string, SimRow>>): void {
    const cls = method.slice(0, method.indexOf('.'));
    const added = new Set<string>();
    for (const [c, table] of this.db.tables) {
      const old = before.get(c) ?? new Map<string, SimRow>();
      for (const ref of table.keys())
        if (!old.has(ref)) {
          added.add(ref);
          this.#emit(c, 'add', ref);
        }
      for (const [ref, row] of old) if (!table.has(ref)) this.#emit(c, 'del', ref, row);
    }
    if (typeof target === 'string' && !added.has(target) && this.db.table(cls).has(target))
      this.#emit(cls, 'mod', target);
  }

  #eventFromArgs(params: readonly unknown[]): { classes: string[]; token: string; timeoutMs: number } {
    if (params.length !== 4)
      throw new XapiFailure('MESSAGE_PARAMETER_COUNT_MISMATCH', 'event.from', '4', String(params.length));
    const classes = this.#arg('strings', params[1], 'classes') as string[];
    const token = this.#arg('string', params[2], 'token') as string;
    const timeout = this.#arg('float', params[3], 'timeout') as number;
    return { classes, token, timeoutMs: Math.max(0, Math.min(Number(timeout) || 0, 3600)) * 1000 };
  }

  /** `event.from` without blocking: the events after `token` of `classes` (`*`: all), and the new token. */
  #eventFrom(params: readonly unknown[]): WireValue {
    const { classes, token } = this.#eventFromArgs(params);
    const wanted = new Set(classes.map((c) => c.toLowerCase()));
    const all = wanted.has('*');
    const counts: Record<string, number> = {};
    for (const [cls, table] of this.db.tables)
      if (all || wanted.has(cls.toLowerCase())) setOwn(counts, cls.toLowerCase(), table.size);
    const now = eventToken(this.#runId, this.#eventId);
    if (token === '') {
      // No token: the current state of every object of the classes, as `add` events.
      const events: WireValue[] = [];
      for (const [cls, table] of this.db.tables) {
        if (!all && !wanted.has(cls.toLowerCase())) continue;
        for (const [ref, row] of table)
          events.push({
            id: this.#eventId,
            timestamp: new Date(),
            class: cls.toLowerCase(),
            operation: 'add',
            ref,
            obj_uuid: typeof row.uuid === 'string' ? row.uuid : '',
            snapshot: rowToWire(cls, row),
          });
      }
      return { events, valid_ref_counts: counts, token: now };
    }
    const m = /^(\d{1,20}),([0-9a-f]{8})$/.exec(token);
    const from = m && m[2] === this.#runId ? Number(m[1]) : Number.NaN;
    const oldest = this.#events[0]?.id ?? this.#eventId + 1;
    if (!Number.isSafeInteger(from) || from > this.#eventId || from < oldest - 1)
      throw new XapiFailure('EVENTS_LOST');
    const events = this.#events
      .filter((e) => e.id > from && (all || wanted.has(e.class)))
      .map((e) => ({ ...e }) as unknown as WireValue);
    return { events, valid_ref_counts: counts, token: now };
  }

  /** `event.inject(class, ref)`: a `mod` event on the object; its token (events after it follow). */
  #inject(params: readonly unknown[]): string {
    this.#count('event.inject', params.slice(1), 2);
    const cls = String(params[1]);
    if (!this.db.has(cls)) throw new XapiFailure('HANDLE_INVALID', cls, String(params[2]));
    const canonical = [...this.db.tables.keys()].find((k) => k.toLowerCase() === cls.toLowerCase()) ?? cls;
    this.#row(canonical, params[2]);
    this.#emit(canonical, 'mod', params[2] as string);
    return eventToken(this.#runId, this.#eventId);
  }

  /** Every message name this simulator answers (`system.listMethods`). */
  listMethods(): string[] {
    const out = [
      'session.login_with_password',
      'session.logout',
      'system.listMethods',
      'task.cancel',
      'task.destroy',
      'task.create',
    ];
    for (const cls of this.db.tables.keys()) {
      out.push(`${cls}.get_all_records`, `${cls}.get_all`, `${cls}.get_record`, `${cls}.get_by_uuid`);
      if (fieldsOf(cls).has('name_label')) out.push(`${cls}.get_by_name_label`);
      for (const f of fieldsOf(cls).keys()) out.push(`${cls}.get_${f}`);
      for (const m of MUTABLE_MAPS[cls] ?? [])
        out.push(`${cls}.set_${m}`, `${cls}.add_to_${m}`, `${cls}.remove_from_${m}`);
      if (TAGGED.has(cls)) out.push(`${cls}.add_tags`, `${cls}.remove_tags`, `${cls}.set_tags`);
    }
    out.push(
      'VM.set_memory_dynamic_range',
      'VM.set_memory_limits',
      'VM.start',
      'VM.hard_shutdown',
      'VM.clean_shutdown',
      'VIF.set_qos_algorithm_type',
      'event.from',
      'event.inject',
      ...BACKUP_METHODS,
    );
    return out.sort();
  }

  /**
   * Runs one message. `params` as decoded from either wire.
   *
   * @throws XapiFailure for every XAPI error.
   */
  call(method: string, params: readonly unknown[]): WireValue {
    if (method === 'session.login_with_password') return this.#login(params);
    if (method === 'system.listMethods') return this.listMethods();
    if (method.startsWith('Async.')) {
      const inner = method.slice(6);
      this.#session(params[0]);
      if (!this.#known(inner)) throw new XapiFailure('MESSAGE_METHOD_UNKNOWN', method);
      return this.#async(inner, params);
    }
    if (method === 'event.from' || method === 'event.inject') {
      this.#session(params[0]);
      return method === 'event.from' ? this.#eventFrom(params) : this.#inject(params);
    }
    if (!this.#known(method)) throw new XapiFailure('MESSAGE_METHOD_UNKNOWN', method);
    this.#session(params[0]);
    this.#lastSession = params[0] as string;
    if (isReadOnly(method)) return this.#run(method, params.slice(1));
    const before = this.#refs();
    const result = this.#run(method, params.slice(1));
    this.#changed(method, params[1], before);
    return result;
  }

  #known(method: string): boolean {
    const dot = method.indexOf('.');
    const cls = method.slice(0, dot);
    if (dot < 1 || !this.db.tables.has(cls)) return method.startsWith('session.');
    return this.listMethods().includes(method);
  }

  #login(params: readonly unknown[]): string {
    if (params.length < 2 || params.length > 4)
      throw new XapiFailure(
        'MESSAGE_PARAMETER_COUNT_MISMATCH',
        'session.login_with_password',
        '4',
        String(params.length),
      );
    const [uname, pwd, , originator] = params;
    if (this.settings.slaveOf !== undefined) throw new XapiFailure('HOST_IS_SLAVE', this.settings.slaveOf);
    if (uname !== this.settings.username || pwd !== this.settings.password)
      throw new XapiFailure('SESSION_AUTHENTICATION_FAILED', String(uname), 'Authentication failure');
    const ref = `OpaqueRef:${randomUUID()}`;
    this.#sessions.set(ref, {
      username: String(uname),
      originator: typeof originator === 'string' ? originator : '',
    });
    return ref;
  }

  #session(value: unknown): Session {
    const s = typeof value === 'string' ? this.#sessions.get(value) : undefined;
    if (!s) throw new XapiFailure('SESSION_INVALID', typeof value === 'string' ? value : '');
    return s;
  }

  #count(method: string, args: readonly unknown[], n: number): void {
    if (args.length !== n)
      throw new XapiFailure(
        'MESSAGE_PARAMETER_COUNT_MISMATCH',
        method,
        String(n + 1),
        String(args.length + 1),
      );
  }

  #arg(type: XapiFieldType, value: unknown, name: string): unknown {
    try {
      return normaliseValue(type, value, name);
    } catch {
      throw new XapiFailure('FIELD_TYPE_ERROR', name);
    }
  }

  #row(cls: string, ref: unknown): SimRow {
    const row = typeof ref === 'string' ? this.db.table(cls).get(ref) : undefined;
    if (!row) throw new XapiFailure('HANDLE_INVALID', cls, String(ref));
    return row;
  }

  #run(method: string, args: readonly unknown[]): WireValue {
    if (method === 'session.logout') {
      this.#sessions.delete(String(this.#lastSession));
      return '';
    }
    const dot = method.indexOf('.');
    const cls = method.slice(0, dot);
    const name = method.slice(dot + 1);
    const table = this.db.table(cls);
    switch (name) {
      case 'get_all_records': {
        this.#count(method, args, 0);
        const out: Record<string, WireValue> = {};
        for (const [ref, row] of table) setOwn(out, ref, rowToWire(cls, row));
        return out;
      }
      case 'get_all':
        this.#count(method, args, 0);
        return [...table.keys()];
      case 'get_record':
        this.#count(method, args, 1);
        return rowToWire(cls, this.#row(cls, args[0]));
      case 'get_by_uuid': {
        this.#count(method, args, 1);
        for (const [ref, row] of table) if (row.uuid === args[0]) return ref;
        throw new XapiFailure('UUID_INVALID', cls, String(args[0]));
      }
      case 'get_by_name_label':
        this.#count(method, args, 1);
        return [...table].filter(([, row]) => row.name_label === args[0]).map(([ref]) => ref);
    }
    if (name.startsWith('get_')) {
      this.#count(method, args, 1);
      const field = name.slice(4);
      return toWire(fieldOf(cls, field), this.#row(cls, args[0])[field]);
    }
    if (cls === 'task') return this.#task(method, name, args);
    if (name === 'add_tags' || name === 'remove_tags' || name === 'set_tags') {
      const row = this.#row(cls, args[0]);
      this.#count(method, args, 2);
      if (name === 'set_tags') {
        row.tags = this.#arg('strings', args[1], 'value');
        return '';
      }
      const tag = this.#arg('string', args[1], 'value') as string;
      const tags = (row.tags as string[]).filter((t) => t !== tag);
      if (name === 'add_tags') tags.push(tag);
      row.tags = tags;
      return '';
    }
    const mapOp = /^(set|add_to|remove_from)_(.+)$/.exec(name);
    if (mapOp && (MUTABLE_MAPS[cls] ?? []).includes(mapOp[2] as string)) {
      const field = mapOp[2] as string;
      const row = this.#row(cls, args[0]);
      const map = { ...(row[field] as Record<string, string>) };
      if (mapOp[1] === 'set') {
        this.#count(method, args, 2);
        row[field] = this.#arg('map', args[1], 'value');
        return '';
      }
      if (mapOp[1] === 'add_to') {
        this.#count(method, args, 3);
        const key = this.#arg('string', args[1], 'key') as string;
        if (Object.hasOwn(map, key))
          throw new XapiFailure('MAP_DUPLICATE_KEY', cls, field, String(row.uuid), key);
        setOwn(map, key, this.#arg('string', args[2], 'value'));
      } else {
        this.#count(method, args, 2);
        delete map[this.#arg('string', args[1], 'key') as string];
      }
      row[field] = map;
      return '';
    }
    if (cls === 'VIF' && name === 'set_qos_algorithm_type') {
      this.#count(method, args, 2);
      this.#row(cls, args[0]).qos_algorithm_type = this.#arg('string', args[1], 'value');
      return '';
    }
    if (BACKUP_METHODS.includes(method)) return this.#backupOp(method, name, args);
    if (cls === 'VM') return this.#vm(method, name, args);
    throw new XapiFailure('MESSAGE_METHOD_UNKNOWN', method);
  }

  #vm(method: string, name: string, args: readonly unknown[]): WireValue {
    const vm = this.#row('VM', args[0]);
    const ref = args[0] as string;
    const state = String(vm.power_state);
    const expect = (...states: string[]) => {
      if (!states.includes(state))
        throw new XapiFailure('VM_BAD_POWER_STATE', ref, states[0]?.toLowerCase() ?? '', state.toLowerCase());
    };
    const int = (v: unknown, n: string) => {
      const x = this.#arg('int', v, n);
      return typeof x === 'bigint' ? Number(x) : (x as number);
    };
    const checkOrder = (smin: number, dmin: number, dmax: number, smax: number) => {
      if (!(smin <= dmin && dmin <= dmax && dmax <= smax))
        throw new XapiFailure('MEMORY_CONSTRAINT_VIOLATION_ORDER');
    };
    switch (name) {
      case 'set_memory_dynamic_range': {
        this.#count(method, args, 3);
        if (vm.is_a_template) throw new XapiFailure('VM_IS_TEMPLATE', ref);
        expect('Halted', 'Running');
        const min = int(args[1], 'min');
        const max = int(args[2], 'max');
        checkOrder(Number(vm.memory_static_min), min, max, Number(vm.memory_static_max));
        vm.memory_dynamic_min = min;
        vm.memory_dynamic_max = max;
        if (state === 'Running') vm.memory_target = max;
        return '';
      }
      case 'set_memory_limits': {
        this.#count(method, args, 5);
        expect('Halted');
        const [smin, smax, dmin, dmax] = [1, 2, 3, 4].map((k) => int(args[k], 'memory')) as [
          number,
          number,
          number,
          number,
        ];
        checkOrder(smin, dmin, dmax, smax);
        Object.assign(vm, {
          memory_static_min: smin,
          memory_static_max: smax,
          memory_dynamic_min: dmin,
          memory_dynamic_max: dmax,
        });
        return '';
      }
      case 'start': {
        this.#count(method, args, 3);
        if (vm.is_a_template) throw new XapiFailure('VM_IS_TEMPLATE', ref);
        expect('Halted');
        const pool = [...this.db.table('pool').values()][0];
        Object.assign(vm, {
          power_state: this.#arg('bool', args[1], 'start_paused') ? 'Paused' : 'Running',
          resident_on: pool?.master ?? null,
          domid: ++this.#domid,
          memory_target: vm.memory_dynamic_max,
        });
        this.db.relink();
        return '';
      }
      case 'hard_shutdown':
      case 'clean_shutdown':
        this.#count(method, args, 1);
        expect('Running', 'Paused', 'Suspended');
        Object.assign(vm, { power_state: 'Halted', resident_on: null, domid: -1 });
        this.db.relink();
        return '';
    }
    throw new XapiFailure('MESSAGE_METHOD_UNKNOWN', method);
  }

  #async(method: string, params: readonly unknown[]): string {
    const n = ++this.#tasks;
    const ref = `OpaqueRef:${madeUuid(1, n)}`;
    const task = this.db.insert('task', ref, {
      uuid: madeUuid(2, n),
      name_label: `Async.${method}`,
      status: 'pending',
      progress: 0,
      created: new Date(Math.floor(Date.now() / 1000) * 1000),
      result: '',
      error_info: [],
    });
    this.#emit('task', 'add', ref);
    const run = () => {
      this.#timers.delete(ref);
      if (task.status !== 'pending') return;
      try {
        const value = this.call(method, params);
        task.result = value === '' ? '' : encodeXmlRpcValue(value);
        task.status = 'success';
      } catch (error) {
        task.status = 'failure';
        task.error_info =
          error instanceof XapiFailure ? error.description : ['INTERNAL_ERROR', String(error)];
      }
      task.progress = 1;
      task.finished = new Date(Math.floor(Date.now() / 1000) * 1000);
      this.#emit('task', 'mod', ref);
    };
    if (this.settings.taskDelayMs > 0) {
      const timer = setTimeout(run, this.settings.taskDelayMs);
      timer.unref();
      this.#timers.set(ref, timer);
    } else {
      run();
    }
    return ref;
  }

  #task(method: string, name: string, args: readonly unknown[]): WireValue {
    if (name === 'create') {
      this.#count(method, args, 2);
      return this.newTask(String(this.#arg('string', args[0], 'label')), 'pending').ref;
    }
    this.#count(method, args, 1);
    const task = this.#row('task', args[0]);
    const ref = args[0] as string;
    if (name === 'cancel') {
      if (task.status !== 'pending')
        throw new XapiFailure('OPERATION_NOT_ALLOWED', 'The task is not pending.');
      clearTimeout(this.#timers.get(ref));
      this.#timers.delete(ref);
      Object.assign(task, {
        status: 'cancelled',
        error_info: ['TASK_CANCELLED', ref],
        finished: new Date(Math.floor(Date.now() / 1000) * 1000),
      });
      return '';
    }
    if (name === 'destroy') {
      clearTimeout(this.#timers.get(ref));
      this.#timers.delete(ref);
      this.db.table('task').delete(ref);
      return '';
    }
    throw new XapiFailure('MESSAGE_METHOD_UNKNOWN', method);
  }

  /**
   * Checks a session ref (the HTTP handlers authenticate with `session_id`).
   *
   * @throws XapiFailure `SESSION_INVALID`.
   */
  checkSession(ref: unknown): void {
    this.#session(ref);
  }

  /** The time now, to the second, by the simulator's clock. */
  now(): Date {
    const t = this.settings.clock?.() ?? new Date();
    return new Date(Math.floor(t.getTime() / 1000) * 1000);
  }

  /** A new object's ref and UUID (deterministic: the n-th object the simulator made). */
  made(kind: number): { ref: string; uuid: string } {
    const n = ++this.#made;
    return { ref: `OpaqueRef:${madeUuid(kind + 10, n)}`, uuid: madeUuid(kind, n) };
  }

  /** A new MAC address (locally administered, deterministic). */
  newMac(): string {
    const n = ++this.#made;
    return `02:00:5a:${[(n >> 16) & 255, (n >> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  }

  /** A new task row (`task.create`, the HTTP handlers' own tasks). */
  newTask(label: string, status: string): { ref: string; row: SimRow } {
    const n = ++this.#tasks;
    const ref = `OpaqueRef:${madeUuid(1, n)}`;
    const row = this.db.insert('task', ref, {
      uuid: madeUuid(2, n),
      name_label: label,
      status,
      progress: 0,
      created: this.now(),
      result: '',
      error_info: [],
    });
    return { ref, row };
  }

  /** A row by class and ref (`HANDLE_INVALID` when missing), for the HTTP handlers. */
  row(cls: string, ref: unknown): SimRow {
    return this.#row(cls, ref);
  }

  /** A VDI's size in bytes. */
  static vdiSize(vdi: SimRow): number {
    return Number(vdi.virtual_size);
  }

  /** Copies a VDI (a snapshot of it, or a plain copy): the record and, shared, its chunks. */
  copyVdi(vdiRef: string, snapshot: boolean, sr?: string): string {
    const vdi = this.#row('VDI', vdiRef);
    const { ref, uuid } = this.made(4);
    this.db.insert('VDI', ref, {
      ...structuredClone(vdi),
      uuid,
      location: uuid,
      SR: sr ?? vdi.SR,
      is_a_snapshot: snapshot,
      snapshot_of: snapshot ? vdiRef : null,
      snapshot_time: snapshot ? this.now() : new Date(0),
      VBDs: [],
    });
    this.disks.copy(vdiRef, String(vdi.uuid), SimApi.vdiSize(vdi), ref);
    return ref;
  }

  /** Destroys a VDI with its chunks (`VDI_IN_USE` when a VBD has it attached); VBDs naming it go too. */
  destroyVdi(vdiRef: string): void {
    this.#row('VDI', vdiRef);
    const vbds = [...this.db.table('VBD')].filter(([, vbd]) => vbd.VDI === vdiRef);
    if (vbds.some(([, vbd]) => vbd.currently_attached === true))
      throw new XapiFailure('VDI_IN_USE', vdiRef, 'destroy');
    for (const [ref] of vbds) this.db.table('VBD').delete(ref);
    this.db.table('VDI').delete(vdiRef);
    this.disks.delete(vdiRef);
    this.db.relink();
  }

  /** Copies a VM with its VBDs, VIFs and (snapshotted or copied) disks. */
  #copyVm(vmRef: string, name: string, kind: 'snapshot' | 'checkpoint' | 'clone'): string {
    const vm = this.#row('VM', vmRef);
    const snapshot = kind !== 'clone';
    const { ref, uuid } = this.made(3);
    this.db.insert('VM', ref, {
      ...structuredClone(vm),
      uuid,
      name_label: name,
      is_a_snapshot: snapshot,
      is_a_template: snapshot ? true : vm.is_a_template,
      snapshot_of: snapshot ? vmRef : null,
      snapshot_time: snapshot ? this.now() : new Date(0),
      power_state: kind === 'checkpoint' ? 'Suspended' : 'Halted',
      resident_on: null,
      domid: -1,
      VBDs: [],
      VIFs: [],
      snapshots: [],
      metrics: null,
      guest_metrics: null,
    });
    this.#copyDevices(vm, ref, snapshot, kind === 'clone');
    this.db.relink();
    return ref;
  }

  /** Gives `to` copies of the VBDs (with copied disks) and VIFs of `from`. */
  #copyDevices(from: SimRow, to: string, snapshot: boolean, newMacs: boolean): void {
    for (const vbdRef of from.VBDs as string[]) {
      const vbd = this.db.table('VBD').get(vbdRef);
      if (!vbd) continue;
      const disk = vbd.type === 'Disk' && typeof vbd.VDI === 'string' && this.db.table('VDI').has(vbd.VDI);
      const vdi = disk ? this.copyVdi(vbd.VDI as string, snapshot) : vbd.VDI;
      const { ref, uuid } = this.made(5);
      this.db.insert('VBD', ref, {
        ...structuredClone(vbd),
        uuid,
        VM: to,
        VDI: vdi,
        currently_attached: false,
      });
    }
    for (const vifRef of from.VIFs as string[]) {
      const vif = this.db.table('VIF').get(vifRef);
      if (!vif) continue;
      const { ref, uuid } = this.made(6);
      this.db.insert('VIF', ref, {
        ...structuredClone(vif),
        uuid,
        VM: to,
        currently_attached: false,
        ...(newMacs ? { MAC: this.newMac(), MAC_autogenerated: true } : {}),
      });
    }
  }

  /** Removes a VM's VBDs and VIFs (and, with `disks`, the VDIs of its disk VBDs), then the VM. */
  #removeVm(vmRef: string, vm: SimRow, disks: boolean, keepVm = false): void {
    for (const vbdRef of vm.VBDs as string[]) {
      const vbd = this.db.table('VBD').get(vbdRef);
      if (disks && vbd?.type === 'Disk' && typeof vbd.VDI === 'string') {
        this.db.table('VDI').delete(vbd.VDI);
        this.disks.delete(vbd.VDI);
      }
      this.db.table('VBD').delete(vbdRef);
    }
    for (const vifRef of vm.VIFs as string[]) this.db.table('VIF').delete(vifRef);
    if (!keepVm) this.db.table('VM').delete(vmRef);
    this.db.relink();
  }

  #backupOp(method: string, name: string, args: readonly unknown[]): WireValue {
    const cls = method.slice(0, method.indexOf('.'));
    const ref = args[0] as string;
    if (cls === 'VBD') return this.#vbdOp(method, name, args);
    if (cls === 'VDI') {
      const vdi = this.#row('VDI', ref);
      if (name === 'snapshot') {
        this.#count(method, args, 2);
        return this.copyVdi(ref, true);
      }
      if (name === 'destroy') {
        this.#count(method, args, 1);
        this.destroyVdi(ref);
        return '';
      }
      this.#count(method, args, 2);
      vdi.name_label = this.#arg('string', args[1], 'value');
      return '';
    }
    const vm = this.#row('VM', ref);
    const state = String(vm.power_state);
    const bad = (expected: string) =>
      new XapiFailure('VM_BAD_POWER_STATE', ref, expected, state.toLowerCase());
    switch (name) {
      case 'snapshot':
      case 'checkpoint':
      case 'clone': {
        this.#count(method, args, 2);
        const label = this.#arg('string', args[1], 'new_name') as string;
        if (vm.is_control_domain) throw new XapiFailure('OPERATION_NOT_ALLOWED', 'the control domain');
        if (vm.is_a_snapshot) throw new XapiFailure('OPERATION_NOT_ALLOWED', 'VM is a snapshot');
        if (name === 'checkpoint' && state !== 'Running') throw bad('running');
        if (name === 'clone' && state !== 'Halted') throw bad('halted');
        if (name === 'snapshot' && state === 'Suspended') throw bad('running');
        return this.#copyVm(ref, label, name);
      }
      case 'revert': {
        this.#count(method, args, 1);
        if (!vm.is_a_snapshot) throw new XapiFailure('OPERATION_NOT_ALLOWED', 'VM.revert needs a snapshot');
        const target = this.#row('VM', vm.snapshot_of);
        const targetRef = vm.snapshot_of as string;
        this.#removeVm(targetRef, target, true, true);
        for (const f of Object.keys(target))
          if (/^(VCPUs_|memory_|platform$|HVM_|PV_)/.test(f)) target[f] = structuredClone(vm[f]);
        Object.assign(target, {
          power_state: vm.power_state === 'Suspended' ? 'Suspended' : 'Halted',
          resident_on: null,
          domid: -1,
        });
        this.#copyDevices(vm, targetRef, false, false);
        this.db.relink();
        return '';
      }
      case 'destroy':
        this.#count(method, args, 1);
        if (vm.is_control_domain) throw new XapiFailure('OPERATION_NOT_ALLOWED', 'the control domain');
        if (!vm.is_a_snapshot && state !== 'Halted') throw bad('halted');
        // As XAPI: the VM, its VBDs and VIFs go; its VDIs stay (destroy them with VDI.destroy).
        this.#removeVm(ref, vm, false);
        return '';
      case 'set_name_label':
        this.#count(method, args, 2);
        vm.name_label = this.#arg('string', args[1], 'value');
        return '';
      case 'set_is_a_template': {
        this.#count(method, args, 2);
        const value = this.#arg('bool', args[1], 'value') as boolean;
        if (vm.is_a_snapshot && !value)
          throw new XapiFailure('OPERATION_NOT_ALLOWED', 'a snapshot stays a template');
        vm.is_a_template = value;
        return '';
      }
    }
    throw new XapiFailure('MESSAGE_METHOD_UNKNOWN', method);
  }

  /** `VBD.create(record)` (the VM halted, its `userdevice` free) and `VBD.destroy` (not while attached). */
  #vbdOp(method: string, name: string, args: readonly unknown[]): WireValue {
    this.#count(method, args, 1);
    if (name === 'destroy') {
      const vbd = this.#row('VBD', args[0]);
      if (vbd.currently_attached === true)
        throw new XapiFailure('OPERATION_NOT_ALLOWED', 'VBD is currently attached');
      this.db.table('VBD').delete(args[0] as string);
      this.db.relink();
      return '';
    }
    const rec = args[0];
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec))
      throw new XapiFailure('FIELD_TYPE_ERROR', 'args');
    const r = rec as Record<string, unknown>;
    const vmRef = this.#arg('ref', r.VM, 'VM') as string;
    const vm = this.#row('VM', vmRef);
    if (vm.power_state !== 'Halted')
      throw new XapiFailure('VM_BAD_POWER_STATE', vmRef, 'halted', String(vm.power_state).toLowerCase());
    const vdi = this.#arg('ref', r.VDI ?? null, 'VDI') as string | null;
    if (vdi !== null) this.#row('VDI', vdi);
    const userdevice = this.#arg('string', r.userdevice ?? '', 'userdevice') as string;
    for (const other of vm.VBDs as string[])
      if (this.db.table('VBD').get(other)?.userdevice === userdevice)
        throw new XapiFailure('DEVICE_ALREADY_EXISTS', userdevice);
    const { ref, uuid } = this.made(5);
    this.db.insert('VBD', ref, {
      uuid,
      VM: vmRef,
      VDI: vdi,
      userdevice,
      device: '',
      type: this.#arg('string', r.type ?? 'Disk', 'type'),
      mode: this.#arg('string', r.mode ?? 'RW', 'mode'),
      empty: this.#arg('bool', r.empty ?? false, 'empty'),
      bootable: this.#arg('bool', r.bootable ?? false, 'bootable'),
      currently_attached: false,
      qos_algorithm_type: this.#arg('string', r.qos_algorithm_type ?? '', 'qos_algorithm_type'),
      qos_algorithm_params: this.#arg('map', r.qos_algorithm_params ?? {}, 'qos_algorithm_params'),
      other_config: this.#arg('map', r.other_config ?? {}, 'other_config'),
    });
    this.db.relink();
    return ref;
  }
}
