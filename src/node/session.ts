// One client's SQL session on a node: the Fsm's session plus the node's leadership rules.
// Every call but finalize/interrupt/close needs this node to be the leader; writes wait for
// the leader's term barrier to be applied; reads (and QUERY of anything) first confirm
// leadership with a ReadIndex round, so a deposed leader never answers from stale data.

import type { FsmSession } from '../fsm/fsm.js';
import type { SqlValue } from '../fsm/protocol.js';

interface LeaderGate {
    requireLeader(): void;
    waitLeaderReady(): Promise<void>;
    readBarrier(): Promise<void>;
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
        return this.inner.exec(id, params);
    }

    async execSql(sql: string, params: readonly SqlValue[]): ReturnType<FsmSession['execSql']> {
        await this.node.waitLeaderReady();
        return this.inner.execSql(sql, params);
    }

    async query(id: number, params: readonly SqlValue[]): ReturnType<FsmSession['query']> {
        await this.node.readBarrier();
        return this.inner.query(id, params);
    }

    async querySql(sql: string, params: readonly SqlValue[]): ReturnType<FsmSession['querySql']> {
        await this.node.readBarrier();
        return this.inner.querySql(sql, params);
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
