// Captures host facts (type, versions, hostname, node info, security model) from libvirtd over raw RPC.
import net from 'node:net';

const PROG = 0x20008086;
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
    if (pkt.readUInt32BE(0) !== PROG) continue;
    const ser = pkt.readUInt32BE(16);
    const status = pkt.readUInt32BE(20);
    const p = pending.get(ser);
    if (!p) continue;
    pending.delete(ser);
    status === 0 ? p.res(pkt.subarray(24)) : p.rej(new Error('error ' + pkt.readInt32BE(24)));
  }
});
function call(proc, args = Buffer.alloc(0)) {
  const s = serial++;
  const h = Buffer.alloc(28);
  h.writeUInt32BE(PROG, 4);
  h.writeUInt32BE(1, 8);
  h.writeInt32BE(proc, 12);
  h.writeUInt32BE(0, 16);
  h.writeUInt32BE(s, 20);
  h.writeUInt32BE(0, 24);
  const pkt = Buffer.concat([h, args]);
  pkt.writeUInt32BE(pkt.length, 0);
  return new Promise((res, rej) => {
    pending.set(s, { res, rej });
    sock.write(pkt);
  });
}
const str = (b, o = 0) => {
  const n = b.readUInt32BE(o);
  return { v: b.subarray(o + 4, o + 4 + n).toString(), o: o + 4 + n + ((4 - (n % 4)) % 4) };
};
const chars = (b, o, n) => {
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = b.readUInt32BE(o + 4 * i);
    if (c) s += String.fromCharCode(c);
  }
  return s;
};
const uri = process.argv[2];
const name = Buffer.from(uri);
const open = Buffer.alloc(8 + name.length + ((4 - (name.length % 4)) % 4) + 4);
open.writeUInt32BE(1, 0);
open.writeUInt32BE(name.length, 4);
name.copy(open, 8);
await call(66);
await call(1, open);
const type = str(await call(3)).v;
const version = (await call(4)).readBigUInt64BE(0).toString();
const libVersion = (await call(157)).readBigUInt64BE(0).toString();
const hostname = str(await call(59)).v;
const ni = await call(6);
const nodeInfo = {
  model: chars(ni, 0, 32),
  memory: ni.readBigUInt64BE(128).toString(),
  cpus: ni.readInt32BE(136),
  mhz: ni.readInt32BE(140),
  nodes: ni.readInt32BE(144),
  sockets: ni.readInt32BE(148),
  cores: ni.readInt32BE(152),
  threads: ni.readInt32BE(156),
};
const sm = await call(122);
const mlen = sm.readUInt32BE(0);
const model = chars(sm, 4, mlen);
const dlen = sm.readUInt32BE(4 + 4 * mlen);
const doi = chars(sm, 8 + 4 * mlen, dlen);
console.log(
  JSON.stringify(
    { uri, type, version, libVersion, hostname, nodeInfo, securityModel: { model, doi } },
    null,
    2,
  ),
);
sock.end();
