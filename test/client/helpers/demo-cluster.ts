// A real dqlite cluster for client tests: three `dqlite-demo` processes (go-dqlite 1.11.5 with
// libdqlite 1.11.1) on free 127.0.0.1 ports and temporary directories. The first node
// bootstraps, the others join it; start() resolves once the cluster reports three voters.
// stop() kills exactly the processes it started (SIGTERM, then SIGKILL after a deadline) and
// removes the directories.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createAdminClient } from '../../../src/client/index.js';
import { freeLoopbackPort as freePort } from '../../../src/lib/net.js';
export { freePort };

export const DEMO = '/usr/bin/dqlite-demo';
export const demoAvailable = existsSync(DEMO);


export interface DemoNode {
    readonly address: string;
    readonly apiAddress: string;
    readonly dir: string;
    process: ChildProcess | undefined;
    log: string;
}

export class DemoCluster {
    readonly nodes: DemoNode[] = [];
    private readonly root: string;

    constructor() {
        this.root = mkdtempSync(join(tmpdir(), 'tqlite-demo-'));
    }

    get addresses(): string[] {
        return this.nodes.map((n) => n.address);
    }

    async start(size = 3): Promise<void> {
        for (let i = 0; i < size; i++) {
            const node: DemoNode = {
                address: `127.0.0.1:${await freePort()}`,
                apiAddress: `127.0.0.1:${await freePort()}`,
                dir: join(this.root, `node${i}`),
                process: undefined,
                log: '',
            };
            mkdirSync(node.dir);
            this.nodes.push(node);
            this.spawnNode(node, i === 0 ? [] : ['--join', (this.nodes[0] as DemoNode).address]);
            if (i === 0) await this.waitFor(1);
        }
        await this.waitFor(size);
    }

    private spawnNode(node: DemoNode, extra: string[]): void {
        const child = spawn(DEMO, ['--api', node.apiAddress, '--db', node.address, '--dir', node.dir, ...extra], {
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        child.stdout?.on('data', (chunk: Buffer) => { node.log += chunk.toString(); });
        child.stderr?.on('data', (chunk: Buffer) => { node.log += chunk.toString(); });
        node.process = child;
    }

    /** Polls the cluster (with back-off, bounded) until it has `voters` voters. */
    async waitFor(voters: number, deadlineMs = 30_000): Promise<void> {
        const started = Date.now();
        const admin = createAdminClient({ servers: this.addresses, timeoutMs: 3_000 });
        try {
            for (let wait = 50; ; wait = Math.min(wait * 2, 500)) {
                try {
                    const nodes = await admin.cluster();
                    if (nodes.filter((n) => n.role === 'voter').length >= voters) return;
                } catch {
                    // not formed yet
                }
                if (Date.now() - started > deadlineMs) {
                    const logs = this.nodes.map((n) => n.log).join('\n');
                    throw new Error(`cluster did not reach ${voters} voters; logs:\n${logs}`);
                }
                await delay(wait);
            }
        } finally {
            await admin.close();
        }
    }

    /** Kills the node's process (SIGKILL) and waits for it to exit. */
    async kill(node: DemoNode): Promise<void> {
        await stopProcess(node.process, 'SIGKILL');
        node.process = undefined;
    }

    async stop(): Promise<void> {
        await Promise.all(this.nodes.map(async (node) => {
            await stopProcess(node.process, 'SIGTERM');
            node.process = undefined;
        }));
        rmSync(this.root, { recursive: true, force: true });
    }
}

async function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    try {
        await exited;
    } finally {
        clearTimeout(timer);
    }
}
