// --target dqlite: the same harness against a real dqlite cluster (go-dqlite's dqlite-demo,
// /usr/bin/dqlite-demo; its database is `demo`), as a check of the harness: dqlite documents that
// a leader cut off from the others may still serve reads (no quorum check), so the register
// workload should catch stale reads under leader partitions.
//
// dqlite-demo binds the address it advertises (--db), so the tqlite trick (--listen elsewhere,
// a front door at the advertised address) does not apply. Instead each node runs in its own
// network namespace (`ip netns`, needs root) where it binds its advertised 127.0.0.1:P_i;
// inside that namespace a forwarder (forward.ts) listens on every OTHER node's advertised
// address and forwards to a Unix socket of the harness (filesystem Unix sockets cross network
// namespaces), and serves a Unix socket that leads to the node itself:
//
//   node k (ns k) ─▶ 127.0.0.1:P_j (forwarder, ns k) ─▶ unix to-j ─▶ harness ─▶ FrontDoor j
//   client ─▶ FrontDoor j (127.0.0.1:P_j in the harness's namespace)
//   FrontDoor j ─▶ LinkProxy (k→j or client→j) ─▶ bridge B_j ─▶ unix node-j
//               ─▶ forwarder (ns j) ─▶ node j
//
// So the wiring after the front door is the tqlite one, with B_j as the node's "real listener".
// Not covered for dqlite: the SIGUSR2 status line (no convergence check by applied index and
// digest; the runs check the leader, the histories, exits and logs), the member nemesis, and
// power-cut mode (dqlite has its own disk mode; not used).

import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, isAlive, tempDir, type Exit } from '../../cluster/procs.js';
import { pipeTo } from './forward.js';
import type { Profile } from './nemesis.js';

const FORWARD = fileURLToPath(new URL('./forward.js', import.meta.url));
const DQLITE_DEMO = '/usr/bin/dqlite-demo';

interface DqliteNode {
    dir: string;
    child: ChildProcess | undefined;
    exited: Promise<Exit>;
    forwarder: ChildProcess | undefined;
}

/** The process side of the dqlite target; the same shape NemesisCluster uses from ProcCluster. */
export class DqliteProcs {
    readonly nodes: DqliteNode[] = [];
    /** Where the harness reaches node i without a fault proxy (bridge B_i). */
    readonly direct: string[] = [];
    private readonly servers: Server[] = [];
    private readonly sockets = new Set<Socket>();
    private readonly namespaces: string[] = [];
    private readonly apiPorts: number[] = [];

    private constructor(
        readonly addresses: string[],
        private readonly root: { path: string; remove: () => void },
    ) {}

    static async create(size: number): Promise<DqliteProcs> {
        const addresses: string[] = [];
        for (let i = 0; i < size; i++) addresses.push(`127.0.0.1:${await freePort()}`);
        const procs = new DqliteProcs(addresses, tempDir('nemesis-dqlite'));
        try {
            await procs.setup(size);
        } catch (error) {
            await procs.close();
            throw error;
        }
        return procs;
    }

    private sock(name: string): string {
        return join(this.root.path, `${name}.sock`);
    }

    private async listen(server: Server, target: { path: string } | { host: string; port: number }): Promise<void> {
        this.servers.push(server);
        await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(target as never, () => resolve());
        });
    }

    private pipe(socket: Socket, target: { path: string } | { host: string; port: number }): void {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        pipeTo(socket, target);
    }

    private async setup(size: number): Promise<void> {
        for (let i = 0; i < size; i++) {
            const dir = join(this.root.path, `n${i + 1}`);
            mkdirSync(dir, { recursive: true });
            const exited = Promise.resolve({ code: null, signal: null });
            this.nodes.push({ dir, child: undefined, exited, forwarder: undefined });
            this.apiPorts.push(await freePort());
            const ns = `tqnem-${process.pid}-${i + 1}`;
            execFileSync('ip', ['netns', 'add', ns]);
            this.namespaces.push(ns);
            execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
        }
        for (let j = 0; j < size; j++) {
            const [host, port] = split(this.addresses[j] as string);
            // Forwarders of the other namespaces reach node j's front door through to-j.
            await this.listen(createServer((s) => this.pipe(s, { host, port })), { path: this.sock(`to-${j + 1}`) });
            // The harness's bridge B_j into namespace j.
            const bridgePort = await freePort();
            this.direct.push(`127.0.0.1:${bridgePort}`);
            const nodeSock = this.sock(`node-${j + 1}`);
            await this.listen(createServer((s) => this.pipe(s, { path: nodeSock })),
                { host: '127.0.0.1', port: bridgePort });
        }
        for (let i = 0; i < size; i++) {
            const args = ['netns', 'exec', this.namespaces[i] as string, process.execPath, FORWARD];
            for (let j = 0; j < size; j++) {
                if (j !== i) args.push(`tcp:${this.addresses[j]}=unix:${this.sock(`to-${j + 1}`)}`);
            }
            args.push(`unix:${this.sock(`node-${i + 1}`)}=tcp:${this.addresses[i]}`);
            const forwarder = spawn('ip', args, { stdio: ['ignore', 'pipe', 'inherit'] });
            (this.nodes[i] as DqliteNode).forwarder = forwarder;
            await new Promise<void>((resolve, reject) => {
                forwarder.once('exit', (code) => reject(new Error(`forwarder ${i + 1} exited with ${code}`)));
                forwarder.stdout?.once('data', () => resolve());
            });
            forwarder.removeAllListeners('exit');
        }
    }

    node(i: number): DqliteNode {
        const n = this.nodes[i];
        if (n === undefined) throw new Error(`no node ${i}`);
        return n;
    }

    isRunning(i: number): boolean {
        return isAlive(this.node(i).child);
    }

    start(i: number, options: { join?: readonly string[] } = {}): DqliteNode {
        const n = this.node(i);
        const args = ['netns', 'exec', this.namespaces[i] as string, DQLITE_DEMO,
            '--api', `127.0.0.1:${this.apiPorts[i]}`, '--db', this.addresses[i] as string, '--dir', n.dir];
        // A node that has data restarts from it; a new one joins (node 1 bootstraps).
        if (options.join !== undefined && options.join.length > 0) args.push('--join', options.join.join(','));
        const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout?.setEncoding('utf8');
        child.stderr?.setEncoding('utf8');
        n.child = child;
        n.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
        return n;
    }

    async stop(i: number): Promise<Exit> {
        const n = this.node(i);
        if (this.isRunning(i)) n.child?.kill('SIGTERM');
        return n.exited;
    }

    async kill9(i: number): Promise<Exit> {
        const n = this.node(i);
        if (this.isRunning(i)) n.child?.kill('SIGKILL');
        return n.exited;
    }

    wipe(i: number): void {
        const dir = this.node(i).dir;
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
    }

    async close(): Promise<void> {
        for (let i = 0; i < this.nodes.length; i++) {
            if (this.isRunning(i)) this.node(i).child?.kill('SIGKILL');
            const f = this.node(i).forwarder;
            if (f !== undefined && f.exitCode === null && f.signalCode === null) f.kill('SIGKILL');
        }
        await Promise.all(this.nodes.map((n) => n.exited));
        await Promise.all(this.nodes.map((n) => (n.forwarder === undefined || n.forwarder.exitCode !== null
            || n.forwarder.signalCode !== null ? undefined : new Promise((r) => n.forwarder?.once('exit', r)))));
        const closed = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
        for (const s of this.sockets) s.destroy();
        await Promise.all(closed);
        for (const ns of this.namespaces) {
            try {
                execFileSync('ip', ['netns', 'del', ns]);
            } catch {
                // already gone
            }
        }
        this.root.remove();
    }
}

function split(address: string): [string, number] {
    const colon = address.lastIndexOf(':');
    return [address.slice(0, colon), Number(address.slice(colon + 1))];
}

/** The CLI's --target dqlite. */
export async function runDqlite(options: { seed: number; durationS: number; nodes: number; profile: Profile;
    signal?: AbortSignal; keepLogs?: boolean; sanityStaleReads?: boolean }): Promise<number> {
    const { formatSummary, runNemesis } = await import('./run.js');
    process.stdout.write(`seed ${options.seed} (target dqlite: ${DQLITE_DEMO})\n`);
    const result = await runNemesis({ ...options, target: 'dqlite', powerCut: false });
    process.stdout.write(`${formatSummary(result)}\n`);
    return result.violations.length === 0 ? 0 : 1;
}
