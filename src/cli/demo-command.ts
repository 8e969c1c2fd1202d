// `tqlite demo`: a local 3-node cluster on loopback in a temporary directory. It shows the
// cluster forming (bootstrap, two joins, 1 voter → 3 voters), runs SQL, shows that every node
// holds the same data (each node's DUMP opened locally), kills the leader with SIGKILL, shows
// the failover and a write on the new leader, then stops everything and cleans up.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { connect, createAdminClient, type AdminClient } from '../client/index.js';
import { freeLoopbackPort as freePort } from '../lib/net.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));


async function until<T>(timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
        const value = await check().catch(() => undefined);
        if (value !== undefined) return value;
        if (performance.now() > deadline) throw new Error('timed out');
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

interface DemoNode {
    readonly address: string;
    readonly dir: string;
    process: ChildProcess | undefined;
    exited: Promise<void>;
}

function startNode(node: DemoNode, join: string | undefined): void {
    const args = [MAIN, 'node', '--address', node.address, '--data', node.dir, '--log-level', 'warn'];
    if (join !== undefined) args.push('--join', join);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    node.process = child;
    node.exited = new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function demoCommand(): Promise<number> {
    const out = (text: string): void => void process.stdout.write(`${text}\n`);
    const root = mkdtempSync(join(tmpdir(), 'tqlite-demo-'));
    const nodes: DemoNode[] = [];
    for (let i = 0; i < 3; i++) {
        const address = `127.0.0.1:${await freePort()}`;
        nodes.push({ address, dir: join(root, `node${i + 1}`), process: undefined, exited: Promise.resolve() });
    }
    const addresses = nodes.map((n) => n.address);
    let admin: AdminClient | undefined;
    const t0 = performance.now();
    const at = (): string => `[${((performance.now() - t0) / 1000).toFixed(2)}s]`;
    try {
        out(`tqlite demo: 3 nodes on loopback, data in ${root}`);
        startNode(nodes[0] as DemoNode, undefined);
        admin = createAdminClient({ servers: addresses, timeoutMs: 5_000 });
        const a = admin;
        await until(15_000, async () => (await a.leader()) ?? undefined);
        out(`${at()} node1 ${addresses[0]} bootstrapped a one-voter cluster and leads it`);
        for (const i of [1, 2]) {
            startNode(nodes[i] as DemoNode, addresses[0]);
            await until(15_000, async () => ((await a.cluster()).length === i + 1 ? true : undefined));
            out(`${at()} node${i + 1} ${addresses[i]} joined`);
        }
        const members = await until(20_000, async () => {
            const c = await a.cluster();
            return c.filter((m) => m.role === 'voter').length === 3 ? c : undefined;
        });
        out(`${at()} the third join promoted two spares: ${members.map((m) => m.role).join(', ')}`);

        const db = await connect({ servers: addresses, database: 'demo', timeoutMs: 10_000 });
        await db.exec('CREATE TABLE fruit (id INTEGER PRIMARY KEY, name TEXT, picked TEXT)');
        for (const name of ['apple', 'pear', 'plum']) {
            await db.exec("INSERT INTO fruit (name, picked) VALUES (?, datetime('now'))", [name]);
        }
        out(`${at()} SQL on the leader:`);
        const fruit = await db.query('SELECT id, name FROM fruit ORDER BY id').all();
        for (const row of fruit) out(`    ${JSON.stringify(row)}`);
        await showEveryNode(a, nodes, out);

        const leader = await a.leader();
        const victim = nodes.find((n) => n.address === leader?.address);
        if (victim?.process === undefined) throw new Error('no leader process');
        out(`${at()} kill -9 the leader ${victim.address} (pid ${victim.process.pid})`);
        const killedAt = performance.now();
        victim.process.kill('SIGKILL');
        await victim.exited;
        victim.process = undefined;
        const survivors = nodes.filter((n) => n !== victim).map((n) => n.address);
        const others = createAdminClient({ servers: survivors, timeoutMs: 2_000 });
        const next = await until(20_000, async () => {
            const l = await others.leader();
            return l !== undefined && l.address !== victim.address ? l : undefined;
        });
        out(`${at()} new leader ${next.address} after ${((performance.now() - killedAt) / 1000).toFixed(2)} s`);
        await db.exec("INSERT INTO fruit (name, picked) VALUES ('fig', datetime('now'))");
        const count = await db.query('SELECT count(*) AS fruit FROM fruit').all();
        out(`${at()} write after failover: ${JSON.stringify(count)}`);
        await others.close();
        await db.close();
        await showEveryNode(a, nodes.filter((n) => n !== victim), out);
        out(`${at()} done`);
        return 0;
    } finally {
        await admin?.close();
        // One at a time: each hands over to nodes that are still running.
        for (const n of nodes) {
            n.process?.kill('SIGTERM');
            await n.exited;
        }
        rmSync(root, { recursive: true, force: true });
        out('stopped every node and removed the data directory');
    }
}

async function showEveryNode(
    admin: AdminClient, nodes: readonly DemoNode[], out: (t: string) => void,
): Promise<void> {
    out('  the same data on every node (each node\'s own copy, fetched with DUMP):');
    for (const node of nodes) {
        const files = await until(10_000, async () => {
            const f = await admin.dump(node.address, 'demo');
            // The image is a WAL-mode database (header bytes 18-19 = 2); an in-memory copy has no
            // WAL, so open it in rollback-journal mode (1) to read it.
            const bytes = Buffer.from(f[0]?.data ?? []);
            if (bytes.length >= 20) bytes.fill(1, 18, 20);
            const image = new Database(bytes, { readonly: true });
            try {
                const sql = "SELECT group_concat(name, ',') AS names FROM (SELECT name FROM fruit ORDER BY id)";
                return image.prepare(sql).get() as { names: string };
            } finally {
                image.close();
            }
        });
        out(`    ${node.address}: ${files.names}`);
    }
}
