// Captures typed parameters (with their wire types) from libvirtd over the raw RPC protocol.
import net from 'node:net';

const PROG = 0x20008086;
class W {
  constructor() {
    this.b = [];
  }
  u32(v) {
    const x = Buffer.alloc(4);
    x.writeUInt32BE(v >>> 0);
    this.b.push(x);
    return this;
  }
  i32(v) {
    const x = Buffer.alloc(4);
    x.writeInt32BE(v);
    this.b.push(x);
    return this;
  }
  str(s) {
    const d = Buffer.from(s);
    this.u32(d.length);
    this.b.push(d);
    const p = (4 - (d.length % 4)) % 4;
    if (p) this.b.push(Buffer.alloc(p));
    return this;
  }
  optstr(s) {
    if (s == null) return this.u32(0);
    this.u32(1);
    return this.str(s);
  }
  raw(b) {
    this.b.push(b);
    return this;
  }
  buf() {
    return Buffer.concat(this.b);
  }
}
class R {
  constructor(b) {
    this.b = b;
    this.o = 0;
  }
  u32() {
    const v = this.b.readUInt32BE(this.o);
    this.o += 4;
    return v;
  }
  i32() {
    const v = this.b.readInt32BE(this.o);
    this.o += 4;
    return v;
  }
  u64() {
    const v = this.b.readBigUInt64BE(this.o);
    this.o += 8;
    return v;
  }
  i64() {
    const v = this.b.readBigInt64BE(this.o);
    this.o += 8;
    return v;
  }
  dbl() {
    const v = this.b.readDoubleBE(this.o);
    this.o += 8;
    return v;
  }
  str() {
    const n = this.u32();
    const s = this.b.subarray(this.o, this.o + n).toString();
    this.o += n + ((4 - (n % 4)) % 4);
    return s;
  }
  bytes(n) {
    const s = this.b.subarray(this.o, this.o + n);
    this.o += n;
    return s;
  }
}
const sock = net.connect(process.env.SOCK ?? '/var/run/libvirt/libvirt-sock');
let serial = 0;
const pending = new Map();
let acc = Buffer.alloc(0);
sock.on('data', (d) => {
  acc = Buffer.concat([acc, d]);
  while (acc.length >= 4) {
    const len = acc.readUInt32BE(0);
    if (acc.length < len) break;
    const pkt = acc.subarray(4, len);
    acc = acc.subarray(len);
    const r = new R(pkt);
    const prog = r.u32();
    r.u32();
    const proc = r.i32();
    r.u32(); // type
    const ser = r.u32();
    const status = r.u32();
    if (prog !== PROG) continue;
    const p = pending.get(ser);
    if (!p) continue;
    pending.delete(ser);
    if (status === 0) p.res(new R(pkt.subarray(24)));
    else {
      const e = new R(pkt.subarray(24));
      const code = e.i32();
      e.i32();
      const msg = e.u32() ? e.str() : '';
      p.rej(new Error(`proc ${proc}: ${code} ${msg}`));
    }
  }
});
function call(proc, args = Buffer.alloc(0)) {
  const s = serial++;
  const h = new W().u32(0).u32(PROG).u32(1).i32(proc).u32(0).u32(s).u32(0).buf();
  const pkt = Buffer.concat([h, args]);
  pkt.writeUInt32BE(pkt.length, 0);
  return new Promise((res, rej) => {
    pending.set(s, { res, rej });
    sock.write(pkt);
  });
}
function tps(r) {
  const n = r.u32();
  const out = [];
  for (let i = 0; i < n; i++) {
    const field = r.str();
    const type = r.i32();
    let value;
    switch (type) {
      case 1:
        value = r.i32();
        break;
      case 2:
        value = r.u32();
        break;
      case 3:
        value = r.i64().toString();
        break;
      case 4:
        value = r.u64().toString();
        break;
      case 5:
        value = r.dbl();
        break;
      case 6:
        value = r.i32() !== 0;
        break;
      case 7:
        value = r.str();
        break;
      default:
        throw new Error('type ' + type);
    }
    out.push({ field, type, value });
  }
  return out;
}
const uri = process.argv[2];
const name = process.argv[3];
const flags = Number(process.argv[4] ?? 0) | (process.env.NOSTR ? 0 : 4);
const disks = (process.argv[5] ?? '').split(',').filter(Boolean);
const nics = (process.argv[6] ?? '').split(',').filter(Boolean);
await call(66);
await call(1, new W().optstr(uri).u32(0).buf());
const dr = await call(23, new W().str(name).buf());
const dname = dr.str();
const uuid = dr.bytes(16);
const id = dr.i32();
const D = () => new W().str(dname).raw(uuid).i32(id);
const out = {
  uri,
  domain: name,
  flags,
  scheduler: null,
  memory: null,
  blkio: null,
  blockIoTune: {},
  interface: {},
};
const st = await call(56, D().buf());
const stype = st.str();
const snp = st.i32();
out.schedulerType = stype;
try {
  out.scheduler = tps(await call(223, D().i32(snp).u32(flags).buf()));
} catch (e) {
  out.schedulerError = e.message;
  out.scheduler = tps(await call(57, D().i32(snp).buf()));
  out.schedulerProc = 57;
}
async function twoStep(proc, pre) {
  const r1 = await call(proc, pre().i32(0).u32(flags).buf());
  tps(r1);
  const n = r1.i32();
  return tps(await call(proc, pre().i32(n).u32(flags).buf()));
}
try {
  out.memory = await twoStep(198, D);
} catch (e) {
  out.memoryError = e.message;
}
try {
  out.blkio = await twoStep(206, D);
} catch (e) {
  out.blkioError = e.message;
}
for (const d of disks) {
  try {
    out.blockIoTune[d] = await twoStep(253, () => D().optstr(d));
  } catch (e) {
    out.blockIoTune[d] = { error: e.message };
  }
}
for (const n of nics) {
  try {
    out.interface[n] = await twoStep(257, () => D().str(n));
  } catch (e) {
    out.interface[n] = { error: e.message };
  }
}
console.log(JSON.stringify(out, null, 2));
sock.end();
