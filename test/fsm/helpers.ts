// Test helpers for the state machine: a leader Fsm whose captured writes are "proposed" to an
// in-memory log, and followers that apply that log. No raft: the test decides when an entry
// commits.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fsm, type FsmOptions } from '../../src/fsm/fsm.js';
import type { CapturedWrite } from '../../src/fsm/protocol.js';

export function tempDir(prefix: string): { path: string; remove: () => void } {
    const path = mkdtempSync(join(tmpdir(), `tqlite-fsm-${prefix}-`));
    return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A leader fsm plus the log of entries it proposed (index = position + 1 + base). */
export class LeaderHarness {
    readonly fsm: Fsm;
    readonly proposed: CapturedWrite[] = [];
    /** Entries of the log in order (raft would assign these indexes). */
    readonly log: Uint8Array[] = [];
    committedUpTo = 0;

    constructor(readonly dirPath: string, options: Partial<FsmOptions> = {}) {
        const dir = dirPath;
        this.fsm = new Fsm({
            dir,
            propose: (w) => {
                this.proposed.push(w);
                this.log.push(w.entry);
            },
            ...options,
        });
    }

    /** Commits and applies (on this leader) every proposed entry not yet committed. */
    async commitAll(): Promise<void> {
        while (this.committedUpTo < this.log.length) {
            const index = this.committedUpTo + 1;
            await this.fsm.apply(index, this.log[index - 1] as Uint8Array);
            this.committedUpTo = index;
        }
    }

    /** Commits entries as they are proposed, until stop() (a background "raft"). */
    autoCommit(): { stop: () => Promise<void> } {
        let running = true;
        let chain = Promise.resolve();
        const pump = (): void => {
            if (!running) return;
            chain = chain.then(() => this.commitAll()).then(() => {
                if (running) setImmediate(pump);
            });
        };
        pump();
        return {
            stop: async () => {
                running = false;
                await chain;
            },
        };
    }
}

/** Applies log entries [from, to] (1-based) to a follower. */
export async function replay(fsm: Fsm, log: readonly Uint8Array[], from: number, to: number): Promise<void> {
    for (let i = from; i <= to; i++) await fsm.apply(i, log[i - 1] as Uint8Array);
}

export async function rows(fsm: Fsm, database: string, sql: string): Promise<unknown[][]> {
    const s = await fsm.open(database);
    try {
        const q = await s.querySql(sql, []);
        const out: unknown[][] = [];
        for (;;) {
            const b = await q.batches.next();
            if (b.done === true) break;
            out.push(...(b.value as unknown[][]));
        }
        return out;
    } finally {
        await s.close();
    }
}

/** Waits, turning the event loop (no timers), until `condition` holds; fails after many turns. */
export async function until(condition: () => boolean, what = 'condition'): Promise<void> {
    for (let i = 0; i < 1_000_000; i++) {
        if (condition()) return;
        await new Promise((r) => setImmediate(r));
    }
    throw new Error(`timed out waiting for ${what}`);
}
