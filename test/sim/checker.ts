// The global observer: raft's safety properties, checked incrementally after every event over
// the whole run (TESTING.md §2.8, §8(a)). It sees every node's log (mirror of the core's log
// with rolling prefix hashes), every node's durable disk, what every state machine applied and
// every message as it leaves a node. Nothing here trusts the core's own bookkeeping: "committed"
// is verified against the durable disks of a majority of voters.

import type { Status } from '../../src/raft/api.js';
import type { Message } from '../../src/raft/messages.js';
import type { Configuration, Entry, HardState, SnapshotMeta } from '../../src/raft/types.js';
import { safety } from './failure.js';
import { hex } from './hash.js';
import type { SimNode } from './node.js';
import type { SmSnapshot } from './state-machine.js';
import type { Counters } from './types.js';

/** (index, term) packed into one number; terms stay far below 2^20 in a simulated run. */
function logKey(index: number, term: number): number {
    return index * 1048576 + term;
}

export class Checker {
    /** Election safety over the whole run: term → the one node that led it. */
    private readonly termLeaders = new Map<number, number>();
    /** Votes granted (sent) per "node:term" → candidate, across restarts. */
    private readonly votes = new Map<string, bigint>();
    /** Log matching: (index, term) → prefix hash, over every log of every node ever. */
    private readonly logMatching = new Map<number, number>();
    /** Committed log: index → prefix hash (undefined where no committing node had the entry). */
    private readonly committed: (number | undefined)[] = [0];
    committedMax = 0;
    /** Highest commit index known to a node of each term (for leader completeness). */
    private readonly commitByTerm = new Map<number, number>();
    /** What state machines applied: index → state hash. */
    private readonly applied: (number | undefined)[] = [0];
    private leaderCommitMax = 0;
    /** Terms in which some node became a candidate (real votes), and how many did. */
    private readonly candidates = new Map<number, number>();
    private readonly nodes: ReadonlyMap<number, SimNode>;
    private readonly counters: Counters;
    /** Per node: what the previous status said within the current incarnation. */
    private readonly last = new Map<number, { incarnation: number; term: number; commit: number }>();

    constructor(nodes: ReadonlyMap<number, SimNode>, counters: Counters) {
        this.nodes = nodes;
        this.counters = counters;
    }

    committedPrefixAt(index: number): number | undefined {
        return this.committed[index];
    }

    /** Returns true when a second node became candidate in this term (a split vote in the making). */
    noteCandidate(node: SimNode, term: number): boolean {
        const count = (this.candidates.get(term) ?? 0) + 1;
        this.candidates.set(term, count);
        return count === 2;
    }

    /**
     * A restart may lose a term that was never durable (the disk checks durable terms only go
     * up), so the in-memory watermarks start again from the disk.
     */
    onStart(node: SimNode): void {
        const term = node.disk.hardState.term;
        this.last.set(node.id, { incarnation: node.incarnation, term, commit: node.commitIndex });
    }

    onHardState(node: SimNode, hardState: HardState): void {
        const key = `${node.id}:${hardState.term}`;
        const granted = this.votes.get(key);
        safety(granted === undefined || hardState.vote === granted || hardState.vote === 0n,
            () => `node ${node.id}: votes for ${hardState.vote} in term ${hardState.term} after it granted its ` +
                `vote to ${granted} (one vote per term, across restarts)`);
    }

    onBecomeLeader(node: SimNode, term: number): void {
        const previous = this.termLeaders.get(term);
        safety(previous === undefined || previous === node.id,
            () => `two leaders in term ${term}: node ${previous} and node ${node.id} (election safety)`);
        if (previous === undefined) {
            this.termLeaders.set(term, node.id);
            this.counters.elections++;
            if (this.termLeaders.size > 1) this.counters.leaderChanges++;
        }
        // Leader completeness: every entry committed in an earlier term is in the new leader's log.
        let required = 0;
        for (const [commitTerm, index] of this.commitByTerm) {
            if (commitTerm < term && index > required) required = index;
        }
        if (required === 0 || required <= node.mirror.baseIndex) return;
        const expected = this.committed[required];
        safety(required <= node.mirror.lastIndex,
            () => `node ${node.id} leads term ${term} with last index ${node.mirror.lastIndex}, but index ` +
                `${required} was committed in an earlier term (leader completeness)`);
        safety(expected === undefined || node.mirror.prefixAt(required) === expected,
            () => `node ${node.id} leads term ${term} without the committed entry ${required} (leader completeness)`);
    }

    onAppend(node: SimNode, index: number, term: number, prefix: number): void {
        const key = logKey(index, term);
        const known = this.logMatching.get(key);
        if (known === undefined) {
            this.logMatching.set(key, prefix);
            return;
        }
        safety(known === prefix,
            () => `node ${node.id}: entry ${index}/${term} has prefix ${hex(prefix)} but another log has ` +
                `${hex(known)} at the same index and term (log matching)`);
    }

    onTruncate(node: SimNode, from: number): void {
        safety(from > node.commitIndex,
            () => `node ${node.id}: truncates from ${from} at or below its commit index ${node.commitIndex}`);
        const expected = this.committed[from];
        if (from <= this.committedMax && expected !== undefined) {
            safety(node.mirror.prefixAt(from) !== expected,
                () => `node ${node.id}: truncates the committed entry ${from}`);
        }
    }

    onInstallSnapshot(node: SimNode, meta: SnapshotMeta, data: SmSnapshot): void {
        safety(meta.index <= this.committedMax,
            () => `node ${node.id}: installs snapshot ${meta.index} beyond anything committed (${this.committedMax})`);
        const expected = this.committed[meta.index];
        safety(expected === undefined || expected === data.stateHash,
            () => `node ${node.id}: snapshot ${meta.index} does not match the committed log there`);
        const state = this.applied[meta.index];
        safety(state === undefined || state === data.stateHash,
            () => `node ${node.id}: snapshot ${meta.index} state differs from what others applied`);
    }

    onApply(node: SimNode, entry: Entry, stateHash: number): void {
        const index = entry.index;
        const known = this.applied[index];
        if (known === undefined) {
            this.applied[index] = stateHash;
        } else {
            safety(known === stateHash,
                () => `node ${node.id}: applied entry ${index}/${entry.term} gives state ${hex(stateHash)}, ` +
                    `another node had ${hex(known)} (state machine safety)`);
        }
        const committed = this.committed[index];
        safety(committed === undefined || committed === stateHash,
            () => `node ${node.id}: applied entry ${index}/${entry.term} is not the committed one`);
    }

    /** Checks what a message promises about the sender's durable state, as it leaves. */
    onSend(node: SimNode, message: Message, expectedPrefix: number | undefined): void {
        if (message.type === 'requestVoteResponse' && message.granted) {
            const upToDate = node.voteRequests.get(`${message.to}:${message.term}:${message.preVote}`);
            safety(upToDate !== false,
                () => `node ${node.id} grants a ${message.preVote ? 'pre-' : ''}vote in term ${message.term} to ` +
                    `${message.to}, whose log was less up-to-date than its own (election restriction, §5.4.1)`);
        }
        if (message.type === 'requestVoteResponse' && message.granted && !message.preVote) {
            const key = `${node.id}:${message.term}`;
            const previous = this.votes.get(key);
            safety(previous === undefined || previous === message.to,
                () => `node ${node.id} grants its vote in term ${message.term} to ${message.to} after granting it ` +
                    `to ${previous} (one vote per term, across restarts)`);
            this.votes.set(key, message.to);
            const durable = node.disk.hardState;
            safety(durable.term > message.term || durable.term === message.term && durable.vote === message.to,
                () => `node ${node.id} grants its vote in term ${message.term} to ${message.to} but its durable ` +
                    `hard state is term ${durable.term} vote ${durable.vote} (vote not persisted before replying)`);
        } else if (message.type === 'requestVote' && !message.preVote) {
            const durable = node.disk.hardState;
            safety(durable.term > message.term || durable.term === message.term && durable.vote === node.nodeId,
                () => `node ${node.id} asks for votes in term ${message.term} but its durable hard state is term ` +
                    `${durable.term} vote ${durable.vote} (term and self-vote not persisted before campaigning)`);
        } else if (message.type === 'appendEntriesResponse' && message.success) {
            safety(node.disk.holds(message.index, expectedPrefix),
                () => `node ${node.id} acknowledges entries up to ${message.index} (term ${message.term}) that ` +
                    `are not durable on its disk (durable last ${node.disk.log.lastIndex})`);
        }
    }

    /** Per-node checks on the core's status after every drive. */
    afterDrive(node: SimNode, status: Status): void {
        safety(status.id === node.nodeId, () => `node ${node.id}: status says id ${status.id}`);
        const last = this.last.get(node.id);
        const term = status.hardState.term;
        const commit = status.commitIndex;
        if (last !== undefined && last.incarnation === node.incarnation) {
            safety(term >= last.term, () => `node ${node.id}: term goes back from ${last.term} to ${term}`);
            safety(commit >= last.commit,
                () => `node ${node.id}: commit index goes back from ${last.commit} to ${commit}`);
        }
        safety(status.soft.term === term, () => `node ${node.id}: soft term ${status.soft.term} ≠ hard term ${term}`);
        safety(term >= node.disk.hardState.term,
            () => `node ${node.id}: term ${term} is below its durable term ${node.disk.hardState.term}`);
        safety(node.handedOut <= commit,
            () => `node ${node.id}: handed out entry ${node.handedOut} beyond its commit index ${commit}`);
        safety(commit <= status.lastIndex,
            () => `node ${node.id}: commit index ${commit} beyond its last index ${status.lastIndex}`);
        safety(status.lastIndex === node.mirror.lastIndex,
            () => `node ${node.id}: status last index ${status.lastIndex} but the Readies built a log ending at ` +
                `${node.mirror.lastIndex}`);
        if (status.soft.role === 'leader') {
            // Single-server changes, one at a time: a leader's log never holds two uncommitted ones
            // (committed as far as anyone knows: a restarted leader's own commit index lags).
            const uncommitted = node.changeIndexes.filter((i) => i > commit &&
                !(i <= this.committedMax && this.committed[i] !== undefined &&
                    node.mirror.prefixAt(i) === this.committed[i]));
            safety(uncommitted.length <= 1,
                () => `leader ${node.id} holds uncommitted configuration changes at ${uncommitted.join(', ')} ` +
                    `(commit ${commit}): one change at a time`);
            const leader = this.termLeaders.get(term);
            safety(leader === node.id, () => `node ${node.id} leads term ${term}, which node ${leader} leads`);
        }
        if (last === undefined || last.incarnation !== node.incarnation || commit > last.commit) {
            this.onCommit(node, status);
        }
        this.last.set(node.id, { incarnation: node.incarnation, term, commit });
    }

    private onCommit(node: SimNode, status: Status): void {
        const commit = status.commitIndex;
        const prefix = node.mirror.prefixAt(commit);
        if (commit <= this.committedMax) {
            const known = this.committed[commit];
            safety(known === undefined || prefix === undefined || known === prefix,
                () => `node ${node.id}: commits index ${commit} with a different entry than was committed there`);
        } else {
            const atMax = this.committed[this.committedMax];
            const mine = node.mirror.prefixAt(this.committedMax);
            safety(atMax === undefined || mine === undefined || atMax === mine,
                () => `node ${node.id}: commits ${commit} on a log that differs at the committed index ` +
                    `${this.committedMax}`);
            for (let i = this.committedMax + 1; i <= commit; i++) {
                const p = node.mirror.prefixAt(i);
                this.committed[i] = p;
                const state = this.applied[i];
                safety(state === undefined || p === undefined || state === p,
                    () => `node ${node.id}: commits entry ${i}, but a different entry was applied there`);
            }
            this.committedMax = commit;
        }
        const term = status.hardState.term;
        if ((this.commitByTerm.get(term) ?? 0) < commit) this.commitByTerm.set(term, commit);
        const last = this.last.get(node.id);
        if (status.soft.role === 'leader' && last !== undefined && last.incarnation === node.incarnation &&
            last.term === term && commit > last.commit) {
            // §5.4.2: a leader commits by counting replicas only entries of its own term.
            safety(node.mirror.termAt(commit) === term,
                () => `leader ${node.id} of term ${term} advanced its commit index to ${commit}, an entry of term ` +
                    `${node.mirror.termAt(commit)} (only current-term entries commit by counting, §5.4.2)`);
        }
        if (status.soft.role === 'leader' || node.ledDuringDrive) {
            this.checkMajorityDurable(node, commit, prefix, status.soft.configuration, node.previousConfiguration);
            if (commit > this.leaderCommitMax) this.leaderCommitMax = commit;
        } else {
            safety(commit <= Math.max(this.leaderCommitMax, node.mirror.baseIndex),
                () => `node ${node.id}: follower commit ${commit} beyond any leader's commit ${this.leaderCommitMax}`);
        }
    }

    /**
     * "Committed" means durable on a majority of the voters (dissertation §3.6). With
     * single-server changes a majority of the previous configuration is as good (any majorities
     * of the two overlap), so a core that counts entries before a change with the old
     * configuration passes too.
     */
    private checkMajorityDurable(node: SimNode, index: number, prefix: number | undefined,
        configuration: Configuration, previous: Configuration): void {
        if (index === 0) return;
        const current = this.countDurable(index, prefix, configuration);
        if (current.holders * 2 > current.voters) return;
        const before = this.countDurable(index, prefix, previous);
        if (before.holders * 2 > before.voters) return;
        safety(false,
            () => `leader ${node.id} commits index ${index} but only ${current.holders} of ${current.voters} voters ` +
                `hold it durably (${current.holderIds.join(',')}); previous configuration: ${before.holders} of ` +
                `${before.voters}`);
    }

    private countDurable(index: number, prefix: number | undefined, configuration: Configuration):
        { voters: number; holders: number; holderIds: number[] } {
        let voters = 0;
        let holders = 0;
        const holderIds: number[] = [];
        for (const server of configuration.servers) {
            if (server.role !== 'voter') continue;
            voters++;
            const peer = this.nodes.get(Number(server.id));
            if (peer !== undefined && peer.disk.holds(index, prefix)) {
                holders++;
                holderIds.push(peer.id);
            }
        }
        return { voters, holders, holderIds };
    }
}
