/**
 * The workers' point-to-point connections (DirectLinks in pm2-transport.ts) over real unix sockets:
 * what one worker sends another arrives in the order sent, and a message over a connection opened
 * again after a break says `resumed` (cluster-sync.ts then clears the receiver's cache).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { DirectLinks, removeStaleSockets, type Sender } from '../../cache/pm2-transport';

const logger = pino({ level: 'silent' });

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function node(id: string, label: string) {
  const got: { from: Sender; data: { n: number } }[] = [];
  /** What the links handed to the fallback (pm2-transport's bus path). */
  const handed: { id: string; messages: unknown[]; gap: boolean }[] = [];
  const links = new DirectLinks(id, label, logger, (to, messages, gap) => handed.push({ id: to, messages, gap }));
  return { id, links, got, handed, listen: () => links.listen((from, data) => got.push({ from, data: data as { n: number } })) };
}

/** The socket of `links`'s current connection to `to` (private: only a test breaks one by hand). */
function connectionTo(links: DirectLinks, to: string): net.Socket {
  return (links as unknown as { conns: Map<string, { sock: net.Socket }> }).conns.get(to)!.sock;
}

describe('direct links', () => {
  const open: DirectLinks[] = [];
  afterEach(() => {
    for (const l of open.splice(0)) l.close();
  });

  /** Two workers listening, `a` knowing `b`'s socket (closed after the test). */
  async function pair(n: number) {
    const a = node(`a.${n}`, '0');
    const b = node(`b.${n}`, '1');
    open.push(a.links, b.links);
    await Promise.all([a.listen(), b.listen()]);
    a.links.notePeer(b.id, b.links.address!);
    return { a, b };
  }

  test('messages from one worker to another arrive in the order sent, labelled with the sender; a reply finds its way back', async () => {
    const { a, b } = await pair(1);
    for (let n = 0; n < 2000; n++) a.links.send([b.id], { n });
    await until(() => b.got.length === 2000);
    expect(b.got.map((m) => m.data.n)).toEqual(Array.from({ length: 2000 }, (_, n) => n));
    expect(b.got.every((m) => m.from.id === a.id && m.from.worker === '0' && m.from.pid === process.pid && !m.from.resumed)).toBe(true);
    // b learnt a's socket from a's messages, so it can answer without being told
    expect(b.links.knows(a.id)).toBe(true);
    b.links.send([a.id], { n: -1 });
    await until(() => a.got.length === 1);
    expect(a.got[0]).toMatchObject({ from: { id: b.id, worker: '1' }, data: { n: -1 } });
    // a sibling whose socket is unknown is skipped (pm2-transport sends to it by the bus instead)
    expect(a.links.knows('c.1')).toBe(false);
    expect(a.links.send(['c.1', b.id], { n: 0 })).toEqual(['c.1']); // handed back to the caller
  });

  test('what one turn sends a sibling leaves in one write at the end of the turn (or at flush), in order', async () => {
    const { a, b } = await pair(7);
    a.links.send([b.id], { n: 0 });
    await until(() => b.got.length === 1);
    const write = jest.spyOn(connectionTo(a.links, b.id), 'write');
    for (let n = 1; n <= 3; n++) a.links.send([b.id], { n });
    expect(write).not.toHaveBeenCalled(); // held until the end of this turn
    await until(() => b.got.length === 4);
    expect(write).toHaveBeenCalledTimes(1);
    a.links.send([b.id], { n: 4 });
    a.links.send([b.id], { n: 5 });
    a.links.flush();
    expect(write).toHaveBeenCalledTimes(2);
    await until(() => b.got.length === 6);
    expect(b.got.map((m) => m.data.n)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test('after the connection breaks, the first message over the new one says resumed (what was in flight may be lost)', async () => {
    const { a, b } = await pair(2);
    a.links.send([b.id], { n: 1 });
    await until(() => b.got.length === 1);
    a.links.send([b.id], { n: 2 }); // in flight when the connection breaks
    connectionTo(a.links, b.id).destroy();
    a.links.send([b.id], { n: 3 });
    a.links.send([b.id], { n: 4 });
    await until(() => b.got.some((m) => m.data.n === 4));
    const byN = new Map(b.got.map((m) => [m.data.n, m.from.resumed === true]));
    expect(byN.get(1)).toBe(false);
    expect(byN.get(3)).toBe(true);
    expect(byN.get(4)).toBe(false);
  });

  test('what was sent just before close still arrives (a leaving worker sends its last invalidation)', async () => {
    const { a, b } = await pair(4);
    a.links.send([b.id], { n: 1 }); // its connection is not even open yet
    a.links.close();
    await until(() => b.got.length === 1);
    expect(b.got[0]).toMatchObject({ data: { n: 1 }, from: { id: a.id } });
  });

  test('a sibling whose socket cannot be reached (its file is gone) is handed to the fallback: what was written to the connection, in order, then nothing more', async () => {
    const { a, b } = await pair(5);
    fs.rmSync(b.links.address!); // b still runs, but nobody can connect to it any more
    expect(a.links.knows(b.id)).toBe(true);
    a.links.send([b.id], { n: 1 });
    a.links.send([b.id], { n: 2 });
    await until(() => a.handed.length === 1);
    expect(a.handed).toEqual([{ id: b.id, messages: [{ n: 1 }, { n: 2 }], gap: false }]);
    expect(a.links.knows(b.id)).toBe(false); // pm2-transport sends to it by the bus from now on
    expect(a.links.send([b.id], { n: 3 })).toEqual([b.id]); // not tried again over a connection: handed back
    await new Promise((r) => setTimeout(r, 50));
    expect(a.handed).toHaveLength(1);
    expect(b.got).toEqual([]);
  });

  test('when a connection that was up breaks and the next cannot be opened, the fallback hears that something may be lost', async () => {
    const { a, b } = await pair(6);
    a.links.send([b.id], { n: 1 });
    await until(() => b.got.length === 1);
    fs.rmSync(b.links.address!);
    connectionTo(a.links, b.id).destroy(); // the connection that was up breaks
    a.links.send([b.id], { n: 2 });
    await until(() => a.handed.length === 1);
    expect(a.handed).toEqual([{ id: b.id, messages: [{ n: 2 }], gap: true }]);
  });

  test('a first connection that broke before anything of it arrived is noticed too', async () => {
    const { a, b } = await pair(3);
    a.links.send([b.id], { n: 1 });
    connectionTo(a.links, b.id).destroy(); // before it even connected: n = 1 is lost
    a.links.send([b.id], { n: 2 });
    await until(() => b.got.length === 1);
    expect(b.got[0]).toMatchObject({ data: { n: 2 }, from: { resumed: true } });
  });

  test("socket files a killed worker left are removed; a live worker's, a young one and another process's are not", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stale-sockets-'));
    try {
      // a process that listens on three socket files and is then killed: it cannot remove them
      const names = ['aaaaaaaa', 'bbbbbbbb', 'cccccccc'];
      const child = spawn(process.execPath, [
        '-e',
        `const net = require('net'); let n = 0; for (const f of ${JSON.stringify(names)})
           net.createServer().listen(require('path').join(${JSON.stringify(dir)}, 'rerum-cache-' + process.pid + '-' + f + '.sock'), () => { if (++n === 3) console.log('up'); });`,
      ]);
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const file = (pid: number | string, hex: string) => path.join(dir, `rerum-cache-${pid}-${hex}.sock`);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const dead = child.pid!;
      const old = new Date(Date.now() - 3_600_000);
      fs.utimesSync(file(dead, 'aaaaaaaa'), old, old); // stale: old, its process gone, nobody listening
      fs.renameSync(file(dead, 'bbbbbbbb'), file(process.ppid, 'bbbbbbbb')); // named after a live process
      fs.utimesSync(file(process.ppid, 'bbbbbbbb'), old, old);
      // file(dead, 'cccccccc') stays young
      // a live listener under a dead process's name (as from another PID namespace sharing the folder)
      const live = net.createServer().listen(file(dead, 'dddddddd'));
      await new Promise((r) => live.once('listening', r));
      fs.utimesSync(file(dead, 'dddddddd'), old, old);
      try {
        expect(await removeStaleSockets(dir)).toEqual([file(dead, 'aaaaaaaa')]);
        expect(fs.readdirSync(dir).sort()).toEqual(
          [
            path.basename(file(dead, 'cccccccc')),
            path.basename(file(dead, 'dddddddd')),
            path.basename(file(process.ppid, 'bbbbbbbb')),
          ].sort(),
        );
      } finally {
        live.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
