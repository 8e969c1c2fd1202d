// The cluster under test in the nemesis harness: N real node processes on 127.0.0.1, every
// link between them and every client link through a fault proxy.
//
// Wiring (one node i, advertised address A_i, real listener L_i):
//
//   client ──▶ FrontDoor(A_i) ──▶ LinkProxy client→i ──▶ L_i
//   node j ──▶ FrontDoor(A_i) ──▶ LinkProxy j→i ──────▶ L_i   (j: from its CONNECT preamble)
//
// The cluster's configuration, the join addresses and the clients only ever see A_i; the
// node listens on L_i (`tqlite node --address A_i --listen L_i`). The front door
// (front-door.ts) sorts connections onto the per-pair LinkProxy of test/jepsen/proxy.ts's
// ProxyNetwork, so partitions, one-way cuts and delays act per directed pair of nodes. The
// harness's own checks (status, leader, DUMP) bypass the proxies and talk to L_i directly.
//
// Disk mode (ClusterOptions.diskMiB, the `disk` profile): every node's data directory is a tmpfs
// of that size (mount(2): root only), so the nemesis can fill one with a balloon file (ENOSPC for
// the raft log and SQLite alike) and free it again. A node may stop on its own because of it
// (fail-stop, exit code ≠ 0), also shortly after the balloon is gone: its exit is expected when
// that process logged a full-disk failure (FULL_DISK_LINE at error level) while its disk was full,
// and its full-disk lines are no violations; it is restarted (by the nemesis when it stopped
// before the disk was freed, else here, after 1 s).
//
// Processes: tqlite nodes are spawned with test/cluster/procs.ts's ProcCluster (reused, not
// copied); every stderr line is scanned for assertion/uncaught/FATAL lines and kept in a log file
// per node under the run's directory. Every exit is matched against the exit the harness caused
// (SIGKILL, or code 0 after SIGTERM); any other exit is "unexpected".

import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import {
    createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, type WriteStream,
} from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createAdminClient, type AdminClient } from '../../../src/client/index.js';
import { ProxyNetwork, type Endpoint } from '../proxy.js';
import { ProcCluster, freePort, waitFor, type Exit } from '../../cluster/procs.js';
import { FrontDoor } from './front-door.js';
import { DqliteProcs } from './dqlite.js';

export type ProcessState = 'up' | 'down' | 'paused';

export interface NodeStatusLine {
    readonly role: string;
    readonly term: number;
    readonly leader: string;
    readonly commitIndex: number;
    readonly appliedIndex: number;
    readonly lastIndex: number;
    readonly fsmAppliedIndex: number;
    readonly voters: readonly string[];
    readonly members: number;
    readonly databases: readonly { database: string; sizePages: number; sha256: string; integrity: string }[];
}

/** What NemesisCluster needs from the process side: ProcCluster (tqlite) or DqliteProcs. */
export interface Procs {
    readonly addresses: string[];
    node(i: number): { dir: string; child: ChildProcess | undefined; exited: Promise<Exit> };
    start(i: number, options: { join?: readonly string[]; extra?: readonly string[] }):
        { child: ChildProcess | undefined; exited: Promise<Exit> };
    isRunning(i: number): boolean;
    stop(i: number): Promise<Exit>;
    kill9(i: number): Promise<Exit>;
    wipe(i: number): void;
    close(): Promise<void>;
}

export type Target = 'tqlite' | 'dqlite';

export interface ClusterOptions {
    readonly target?: Target;
    readonly size: number;
    readonly seed: number;
    /** Start nodes with --unsafe-power-cut-mode (BufferedFs). */
    readonly powerCut: boolean;
    /** Directory for node logs (kept after the run). */
    readonly logDir: string;
    /** Print progress lines. */
    readonly log: (line: string) => void;
    /** Disk mode: each node's data directory is a tmpfs of this many MiB (needs root). */
    readonly diskMiB?: number;
}

/** A bad line in a node's log. */
export interface LogProblem {
    readonly node: number;
    readonly line: string;
}

const BAD_LINE = /assert|uncaught|unhandled|FATAL|node failed|SIGSEGV|core dumped/i;

const DQLITE_BAD_LINE = /assert|panic|fatal|SIGSEGV|core dumped/i;

/** A node's error lines while its disk is full: its fail-stop, not a violation. */
const FULL_DISK_LINE = /ENOSPC|no space left|disk is full|fsm is failed|storage failed/i;

/** Log lines that are expected consequences of the harness's own faults. */
function isBadLine(line: string): boolean {
    if (line.trim() === '') return false;
    if (!line.startsWith('{')) {
        // Node's own warnings are fine; any other unstructured output (a stack trace) is not.
        return !/^\(node:\d+\) \w*Warning|^\(Use `node --trace/.test(line);
    }
    return BAD_LINE.test(line);
}

export class NemesisCluster {
    readonly size: number;
    readonly states: ProcessState[];
    /** Whether node i logged 'node started' (its SIGUSR2 handler is installed). */
    private readonly ready: boolean[];
    /** Exits the harness did not cause. */
    readonly unexpectedExits: { node: number; exit: Exit }[] = [];
    readonly logProblems: LogProblem[] = [];
    /** Error-level lines (reported, not failures by themselves). */
    errorLines = 0;
    private readonly procs: Procs;
    readonly target: Target;
    private readonly network: ProxyNetwork;
    private readonly doors: FrontDoor[];
    private readonly listen: string[];
    private readonly expectedExit: (Exit | undefined)[];
    private readonly logFiles: WriteStream[] = [];
    private readonly statusWaiters: (((s: NodeStatusLine) => void) | undefined)[];
    private readonly options: ClusterOptions;
    /** Direct admin client (no proxy) per node. */
    private readonly directAdmin: AdminClient[];
    private closed = false;
    private readonly restartTimers = new Set<NodeJS.Timeout>();
    /** Disk mode: the tmpfs mount points, and which nodes' disks the nemesis filled. */
    private readonly mounted: string[] = [];
    private readonly diskFull: boolean[];
    /** This process of node i logged a full-disk failure while its disk was full. */
    private readonly failedOnFullDisk: boolean[];
    /** Exits of nodes whose disk was full (expected: fail-stop). */
    readonly fullDiskStops: { node: number; exit: Exit }[] = [];

    private constructor(
        options: ClusterOptions, procs: Procs, network: ProxyNetwork, doors: FrontDoor[], listen: string[],
    ) {
        this.options = options;
        this.size = options.size;
        this.target = options.target ?? 'tqlite';
        this.procs = procs;
        this.network = network;
        this.doors = doors;
        this.listen = listen;
        this.states = listen.map(() => 'down');
        this.expectedExit = listen.map(() => undefined);
        this.ready = listen.map(() => false);
        this.statusWaiters = listen.map(() => undefined);
        this.diskFull = listen.map(() => false);
        this.failedOnFullDisk = listen.map(() => false);
        mkdirSync(options.logDir, { recursive: true });
        for (let i = 0; i < options.size; i++) {
            this.logFiles.push(createWriteStream(join(options.logDir, `n${i + 1}.log`), { flags: 'a' }));
        }
        this.directAdmin = listen.map((address) => createAdminClient({
            servers: [address], timeoutMs: 2_000, dialTimeoutMs: 500, probeTimeoutMs: 1_000,
        }));
    }

    static async open(options: ClusterOptions): Promise<NemesisCluster> {
        let procs: Procs;
        const listen: string[] = [];
        if (options.target === 'dqlite') {
            const dqlite = await DqliteProcs.create(options.size);
            procs = dqlite;
            listen.push(...dqlite.direct);
        } else {
            procs = await ProcCluster.create(options.size, 'nemesis');
            for (let i = 0; i < options.size; i++) listen.push(`127.0.0.1:${await freePort()}`);
        }
        const ids = procs.addresses.map((_, i) => nodeName(i));
        const network = await ProxyNetwork.open({
            nodes: ids.map((id, i) => ({ id, target: endpoint(listen[i] as string) })),
            seed: options.seed,
        });
        const byAdvertised = new Map(procs.addresses.map((a, i) => [a, ids[i] as string]));
        const doors: FrontDoor[] = [];
        try {
            for (let i = 0; i < options.size; i++) {
                const to = ids[i] as string;
                doors.push(await FrontDoor.open({
                    name: to,
                    port: endpoint(procs.addresses[i] as string).port,
                    route: (from) => {
                        const fromId = from === undefined ? undefined : byAdvertised.get(from);
                        // A CONNECT from an address we do not know (never expected) goes the client way.
                        return network.link(fromId === undefined || fromId === to ? 'client' : fromId, to).address;
                    },
                }));
            }
        } catch (error) {
            await Promise.all(doors.map((d) => d.close()));
            await network.close();
            await procs.close();
            throw error;
        }
        const cluster = new NemesisCluster(options, procs, network, doors, listen);
        if (options.diskMiB !== undefined) {
            try {
                cluster.mountDisks(options.diskMiB);
            } catch (error) {
                await cluster.close();
                throw error;
            }
        }
        return cluster;
    }

    private mountDisks(mib: number): void {
        for (let i = 0; i < this.size; i++) {
            const dir = this.procs.node(i).dir;
            mkdirSync(dir, { recursive: true });
            try {
                execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir], { stdio: 'pipe' });
            } catch (error) {
                const why = String((error as { stderr?: Buffer }).stderr ?? error).trim();
                throw new Error(`disk mode needs a tmpfs per node (mount(2), root): ${why}`);
            }
            this.mounted.push(dir);
        }
    }

    /** Fills node i's disk with a balloon file until ENOSPC. Resolves with the bytes written. */
    async fillDisk(i: number): Promise<number> {
        const dir = this.procs.node(i).dir;
        this.diskFull[i] = true;
        const file = await openFile(join(dir, 'balloon'), 'a');
        const chunk = Buffer.alloc(1 << 20);
        let written = 0;
        try {
            for (;;) {
                try {
                    await file.write(chunk, 0, chunk.length, null);
                    written += chunk.length;
                } catch (error) {
                    if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
                    throw error;
                }
            }
        } finally {
            await file.close();
        }
        return written;
    }

    /** Removes node i's balloon. */
    freeDisk(i: number): void {
        rmSync(join(this.procs.node(i).dir, 'balloon'), { force: true });
        this.diskFull[i] = false;
    }

    get advertised(): string[] {
        return this.procs.addresses;
    }

    get net(): ProxyNetwork {
        return this.network;
    }

    get dataRoot(): string {
        return this.procs.node(0).dir;
    }

    nodeId(i: number): string {
        return nodeName(i);
    }

    indexOfAdvertised(address: string): number | undefined {
        const i = this.procs.addresses.indexOf(address);
        return i < 0 ? undefined : i;
    }

    /** Spawns node i (first start of node 0 bootstraps; everything else joins the others). */
    start(i: number, bootstrap = false): void {
        const extra = ['--listen', this.listen[i] as string];
        if (this.options.powerCut) extra.push('--unsafe-power-cut-mode');
        const join = bootstrap ? [] : this.advertised.filter((_, j) => j !== i);
        const n = this.procs.start(i, { join, extra });
        this.states[i] = 'up';
        this.ready[i] = this.target === 'dqlite';
        this.expectedExit[i] = undefined;
        this.failedOnFullDisk[i] = false;
        const file = this.logFiles[i] as WriteStream;
        for (const stream of [n.child?.stderr, n.child?.stdout]) {
            let partial = '';
            stream?.on('data', (chunk: string) => {
                file.write(chunk);
                const lines = (partial + chunk).split('\n');
                partial = lines.pop() ?? '';
                for (const line of lines) this.onLine(i, line);
            });
        }
        const child = n.child;
        void n.exited.then((exit) => {
            if (this.procs.node(i).child !== child) return;
            const expected = this.expectedExit[i];
            // SIGTERM before the node installed its handler (still starting) ends it by the signal.
            const ok = expected !== undefined && (expected.signal !== null
                ? exit.signal === expected.signal
                : exit.code === expected.code || exit.signal === 'SIGTERM');
            this.states[i] = 'down';
            if (!ok && !this.closed && this.failedOnFullDisk[i] && exit.code !== 0) {
                this.fullDiskStops.push({ node: i, exit });
                this.options.log(`n${i + 1} stopped on its full disk: ${JSON.stringify(exit)}`);
                // Freed meanwhile: nobody else restarts it.
                if (!this.diskFull[i]) this.restartSoon(i);
                return;
            }
            if (!ok && !this.closed) {
                this.unexpectedExits.push({ node: i, exit });
                this.options.log(`UNEXPECTED EXIT of n${i + 1}: ${JSON.stringify(exit)}; restarting it in 1 s`);
                // Recorded as a violation; the run goes on with the node back, so one crash
                // does not leave the cluster a node short for the rest of a long run.
                this.restartSoon(i);
            }
        });
    }

    /** Restarts node i in 1 s unless it runs again by then (or the cluster closed). */
    private restartSoon(i: number): void {
        const timer = setTimeout(() => {
            this.restartTimers.delete(timer);
            if (!this.closed && !this.isRunning(i)) this.start(i);
        }, 1_000);
        this.restartTimers.add(timer);
    }

    private onLine(i: number, line: string): void {
        if (line.includes('"msg":"node started"')) this.ready[i] = true;
        if ((this.diskFull[i] || this.failedOnFullDisk[i]) && FULL_DISK_LINE.test(line)) {
            // Its fail-stop (disk mode): expected, and its exit with it.
            if (line.includes('"level":"error"')) this.failedOnFullDisk[i] = true;
            return;
        }
        if (line.includes('"level":"error"')) this.errorLines++;
        if (this.target === 'dqlite' ? DQLITE_BAD_LINE.test(line) : isBadLine(line)) {
            this.logProblems.push({ node: i, line: line.slice(0, 2_000) });
            this.options.log(`BAD LOG LINE n${i + 1}: ${line.slice(0, 300)}`);
        }
        if (line.includes('"msg":"status"')) {
            const waiter = this.statusWaiters[i];
            if (waiter !== undefined) {
                this.statusWaiters[i] = undefined;
                try {
                    waiter(JSON.parse(line) as NodeStatusLine);
                } catch {
                    // A torn line: the next request gets another.
                }
            }
        }
    }

    isRunning(i: number): boolean {
        return this.procs.isRunning(i);
    }

    async kill9(i: number): Promise<void> {
        if (!this.isRunning(i)) return;
        this.expectedExit[i] = { code: null, signal: 'SIGKILL' };
        await this.procs.kill9(i);
        this.states[i] = 'down';
    }

    /** SIGTERM; returns false when the node had not exited within `timeoutMs` (then SIGKILLed). */
    async stop(i: number, timeoutMs: number): Promise<boolean> {
        if (!this.isRunning(i)) return true;
        if (this.states[i] === 'paused') this.resume(i);
        this.expectedExit[i] = { code: 0, signal: null };
        const exited = this.procs.stop(i);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
            exited.then(() => false),
            new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
        ]);
        clearTimeout(timer);
        if (timedOut) {
            this.expectedExit[i] = { code: null, signal: 'SIGKILL' };
            await this.procs.kill9(i);
        }
        this.states[i] = 'down';
        return !timedOut;
    }

    pause(i: number): void {
        if (!this.isRunning(i) || this.states[i] !== 'up') return;
        this.procs.node(i).child?.kill('SIGSTOP');
        this.states[i] = 'paused';
    }

    resume(i: number): void {
        if (!this.isRunning(i) || this.states[i] !== 'paused') return;
        this.procs.node(i).child?.kill('SIGCONT');
        this.states[i] = 'up';
    }

    wipe(i: number): void {
        if (!this.mounted.includes(this.procs.node(i).dir)) {
            this.procs.wipe(i);
            return;
        }
        // A mount point stays: only what is in it goes.
        const dir = this.procs.node(i).dir;
        for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
    }

    /** The node's 'status' line (SIGUSR2), or undefined when it does not answer in time. */
    async status(i: number, timeoutMs = 3_000): Promise<NodeStatusLine | undefined> {
        if (this.target === 'dqlite') return undefined;
        if (!this.isRunning(i) || this.states[i] !== 'up' || !this.ready[i]) return undefined;
        let timer: NodeJS.Timeout | undefined;
        const line = new Promise<NodeStatusLine | undefined>((resolve) => {
            this.statusWaiters[i] = resolve;
            timer = setTimeout(() => {
                this.statusWaiters[i] = undefined;
                resolve(undefined);
            }, timeoutMs);
        });
        this.procs.node(i).child?.kill('SIGUSR2');
        const result = await line;
        clearTimeout(timer);
        return result;
    }

    /**
     * A deliberately WEAK read for the harness's sanity mode: `sql` on node i's own copy of
     * `database` (DUMP over the direct link, opened locally), with no leader and no ReadIndex.
     */
    async weakRead(i: number, database: string, sql: string, params: readonly unknown[]): Promise<unknown[]> {
        const admin = this.directAdmin[i] as AdminClient;
        const files = await admin.dump(this.listen[i] as string, database, { timeoutMs: 2_000 });
        // The image and its WAL (dqlite sends recent pages in the WAL; tqlite's WAL is empty),
        // written to a scratch directory and opened as SQLite would open them.
        const dir = mkdtempSync(join(tmpdir(), 'tqlite-weak-read-'));
        try {
            const path = join(dir, 'db');
            writeFileSync(path, files[0]?.data ?? new Uint8Array(0));
            writeFileSync(`${path}-wal`, files[1]?.data ?? new Uint8Array(0));
            const image = new Database(path);
            try {
                return image.prepare(sql).all(...params);
            } finally {
                image.close();
            }
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    }

    /** The leader as node i sees it (direct admin, no proxy): its index, or undefined. */
    async leaderSeenBy(i: number): Promise<number | undefined> {
        const admin = this.directAdmin[i] as AdminClient;
        const leader = await admin.leader({ timeoutMs: 1_000 });
        return leader === undefined ? undefined : this.indexOfAdvertised(leader.address);
    }

    /** The leader most running nodes agree on (via their status lines), or undefined. */
    async leader(): Promise<number | undefined> {
        if (this.target === 'dqlite') return this.leaderByAdmin();
        const statuses = await Promise.all([...Array(this.size).keys()].map((i) => this.status(i, 1_500)));
        const votes = new Map<number, number>();
        for (let i = 0; i < statuses.length; i++) {
            const s = statuses[i];
            if (s?.role === 'leader') votes.set(i, (votes.get(i) ?? 0) + 100);
        }
        // Prefer a node that says it is leader; use the admin view as a tie-breaker.
        const claimed = [...votes.keys()];
        if (claimed.length === 1) return claimed[0];
        if (claimed.length === 0) return undefined;
        for (let i = 0; i < this.size; i++) {
            if (this.states[i] !== 'up') continue;
            try {
                const l = await this.leaderSeenBy(i);
                if (l !== undefined && claimed.includes(l)) return l;
            } catch {
                // not reachable
            }
        }
        return claimed[0];
    }

    /** The leader a majority of the running nodes name over LEADER (no status lines: dqlite). */
    private async leaderByAdmin(): Promise<number | undefined> {
        const views = await Promise.all([...Array(this.size).keys()].map(async (i) => {
            if (this.states[i] !== 'up') return undefined;
            try {
                return await this.leaderSeenBy(i);
            } catch {
                return undefined;
            }
        }));
        const votes = new Map<number, number>();
        for (const v of views) if (v !== undefined) votes.set(v, (votes.get(v) ?? 0) + 1);
        for (const [leader, count] of votes) if (count > this.size / 2) return leader;
        return undefined;
    }

    /** The current members (direct admin through any running node). */
    async members(): Promise<{ id: bigint; address: string; role: string }[]> {
        for (let i = 0; i < this.size; i++) {
            if (this.states[i] !== 'up') continue;
            try {
                const admin = this.directAdmin[i] as AdminClient;
                return await admin.cluster({ timeoutMs: 2_000 });
            } catch {
                // try the next one
            }
        }
        throw new Error('no node answered CLUSTER');
    }

    /** Removes node i from the configuration (through whichever node leads). */
    async removeMember(i: number): Promise<boolean> {
        const members = await this.members();
        const member = members.find((m) => m.address === this.advertised[i]);
        if (member === undefined) return false;
        const leader = await this.leader();
        if (leader === undefined) return false;
        await (this.directAdmin[leader] as AdminClient).remove(member.id, { timeoutMs: 5_000 });
        return true;
    }

    heal(): void {
        this.network.heal();
    }

    async waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
        return waitFor(what, timeoutMs, check);
    }

    /** Bytes and connections through the proxies (for the summary). */
    proxyStats(): { accepted: number; peerConnections: number; clientConnections: number } {
        let accepted = 0;
        for (const l of this.network.allLinks()) accepted += l.acceptedCount;
        let peer = 0;
        let client = 0;
        for (const d of this.doors) {
            peer += d.routed.peer;
            client += d.routed.client;
        }
        return { accepted, peerConnections: peer, clientConnections: client };
    }

    async close(): Promise<void> {
        this.closed = true;
        for (const timer of this.restartTimers) clearTimeout(timer);
        this.restartTimers.clear();
        for (let i = 0; i < this.size; i++) this.resume(i);
        await Promise.all(this.directAdmin.map((a) => a.close()));
        if (this.mounted.length > 0) {
            // Every process gone before the mounts go (procs.close() removes the directories).
            for (let i = 0; i < this.size; i++) await this.kill9(i);
            for (const dir of this.mounted.splice(0)) {
                try {
                    execFileSync('umount', [dir], { stdio: 'pipe' });
                } catch {
                    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
                }
            }
        }
        await this.procs.close();
        await Promise.all(this.doors.map((d) => d.close()));
        await this.network.close();
        await Promise.all(this.logFiles.map((f) => new Promise<void>((resolve) => f.end(() => resolve()))));
    }
}

export function nodeName(i: number): string {
    return `n${i + 1}`;
}

function endpoint(address: string): Endpoint {
    const colon = address.lastIndexOf(':');
    return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}
