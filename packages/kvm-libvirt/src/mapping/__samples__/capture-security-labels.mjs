// Captures DOMAIN_GET_SECURITY_LABEL_LIST (278) and DOMAIN_GET_SECURITY_LABEL (121) of a domain over raw RPC.
import net from 'node:net';

const PROG = 0x20008086;
const sock = net.connect('/var/run/libvirt/libvirt-sock');
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
    if (pkt.readUInt32BE(0) !== PROG) continue;
    const ser = pkt.readUInt32BE(16);
    const status = pkt.readUInt32BE(20);
    const p = pending.get(ser);
    if (!p) continue;
    pending.delete(ser);
    status === 0
      ? p.res(pkt.subarray(24))
      : p.rej(new Error('error ' + pkt.readInt32BE(24) + ' ' + pkt.subarray(36, 200).toString()));
  }
});
function call(proc, args = Buffer.alloc(0)) {
  const s = serial++;
  const h = Buffer.alloc(28);
  h.writeUInt32BE(PROG, 4);
  h.writeUInt32BE(1, 8);
  h.writeInt32BE(proc, 12);
  h.writeUInt32BE(s, 20);
  const pkt = Buffer.concat([h, args]);
  pkt.writeUInt32BE(pkt.length, 0);
  return new Promise((res, rej) => {
    pending.set(s, { res, rej });
    sock.write(pkt);
  });
}
const str = (s) => {
  const b = Buffer.from(s);
  const pad = (4 - (b.length % 4)) % 4;
  const h = Buffer.alloc(4);
  h.writeUInt32BE(b.length);
  return Buffer.concat([h, b, Buffer.alloc(pad)]);
};
const [uri, name] = process.argv.slice(2);
await call(66);
await call(1, Buffer.concat([Buffer.from([0, 0, 0, 1]), str(uri), Buffer.alloc(4)]));
const d = await call(23, str(name));
const n = d.readUInt32BE(0);
const dlen = 4 + n + ((4 - (n % 4)) % 4) + 16 + 4;
const dom = d.subarray(0, dlen);
const r = await call(278, dom);
let o = 0;
const count = r.readUInt32BE(o);
o += 4;
const labels = [];
for (let i = 0; i < count; i++) {
  const len = r.readUInt32BE(o);
  o += 4;
  let s = '';
  for (let k = 0; k < len; k++) {
    const c = r.readUInt32BE(o);
    o += 4;
    if (c) s += String.fromCharCode(c);
  }
  const enforcing = r.readInt32BE(o);
  o += 4;
  labels.push({ label: s, enforcing });
}
const ret = r.readInt32BE(o);
const p = await call(121, dom);
const l1 = p.readUInt32BE(0);
let s1 = '';
for (let k = 0; k < l1; k++) {
  const c = p.readUInt32BE(4 + 4 * k);
  if (c) s1 += String.fromCharCode(c);
}
const enf = p.readInt32BE(4 + 4 * l1);
console.log(
  JSON.stringify(
    { uri, domain: name, securityLabelList: { labels, ret }, securityLabel: { label: s1, enforcing: enf } },
    null,
    2,
  ),
);
sock.end();
