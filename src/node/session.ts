// One client's SQL session on a node: the Fsm's session plus the node's leadership rules.
// Every call but finalize/interrupt/close needs this node to be the leader; writes wait for
// the leader's term barrier to be applied; reads (and QUERY of anything) confirm leadership
// with a ReadIndex round, so a deposed leader never answers from stale data.
//
// A QUERY runs in the worker while its ReadIndex round is in flight, and its reply is held
// until the round confirmed leadership (latency: the longer of the two, not their sum). This
// stays linearizable: once the term's barrier is applied, the worker's SQLite holds every
// entry of this leader's log — earlier terms' entries are applied, and this term's were
// committed locally before they were proposed — so a query posted after the read arrived sees
// at least everything committed when it arrived (the read index); what it may see beyond that
// is held until raft commits it (FsmSession: dependsOnTx); and the round, started after the
// read arrived, proves no other leader committed anything before. If the round fails, the
// query's result is discarded (its cursor closed) and the round's error is returned.

import type { FsmSession } from '../fsm/fsm.js';
import type { SqlValue } from '../fsm/protocol.js';

interface LeaderGate {
    requireLeader(): void;
    waitLeaderReady(): Promise<void>;
    readBarrier(): Promise<void>;
    /** A statement failed (a leader's SQLITE_FULL may mean its disk is full: disk-full.ts). */
    statementFailed(error: unknown): void;
}

export class NodeSqlSession {
    private closed = false;

    constructor(
        private readonly node: LeaderGate,
        private readonly inner: FsmSession,
        private readonly onClose: () => void,
    ) {}

    async prepare(sql: string): ReturnType<FsmSession['prepare']> {
        this.node.requireLeader();
        return this.inner.prepare(sql);
    }

    async exec(id: number, params: readonly SqlValue[]): ReturnType<FsmSession['exec']> {
        await this.node.waitLeaderReady();
        return this.watched(this.inner.exec(id, params));
    }

    async execSql(sql: string, params: readonly SqlValue[]): ReturnType<FsmSession['execSql']> {
        await this.node.waitLeaderReady();
        return this.watched(this.inner.execSql(sql, params));
    }

    async query(id: number, params: readonly SqlValue[]): ReturnType<FsmSession['query']> {
        return this.confirmedRead(() => this.inner.query(id, params));
    }

    async querySql(sql: string, params: readonly SqlValue[]): ReturnType<FsmSession['querySql']> {
        return this.confirmedRead(() => this.inner.querySql(sql, params));
    }

    private async confirmedRead(run: () => ReturnType<FsmSession['query']>): ReturnType<FsmSession['query']> {
        await this.node.waitLeaderReady();
        const confirmed = this.node.readBarrier();
        confirmed.catch(() => undefined); // awaited below; not unhandled while the query runs
        const result = run();
        let rows: Awaited<ReturnType<FsmSession['query']>>;
        try {
            rows = await result;
        } catch (error) {
            this.node.statementFailed(error);
            // A failed round explains a failed query best (e.g. not leader any more).
            await confirmed;
            throw error;
        }
        try {
            await confirmed;
        } catch (error) {
            await rows.batches.return().catch(() => undefined);
            throw error;
        }
        return rows;
    }

    /** `running`, with its failure shown to the node first. */
    private watched<T>(running: Promise<T>): Promise<T> {
        return running.catch((error: unknown) => {
            this.node.statementFailed(error);
            throw error;
        });
    }

    finalize(id: number): Promise<void> {
        return this.inner.finalize(id);
    }

    interrupt(): void {
        this.inner.interrupt();
    }

    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        try {
            await this.inner.close();
        } finally {
            this.onClose();
        }
    }
}
