// Goal: check, one rule per test, that the core follows the Raft paper (Ongaro & Ousterhout,
// "In Search of an Understandable Consensus Algorithm", §5) and Ongaro's dissertation
// ("Consensus: Bridging Theory and Practice", §3-§10) where the features go beyond the paper.
// Method: each test builds a small cluster with the Env harness, drives it step by step
// (messages are delivered only when the test says so) and checks the messages and state the
// rule talks about. The section is named in each test's title.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppendEntries, Message } from '../../src/raft/messages.js';
import { RaftCore } from '../../src/raft/core.js';
import { bootstrap } from '../../src/raft/bootstrap.js';
import { SeededRandom } from '../../src/lib/random.js';
import { EntryType } from '../../src/raft/types.js';
import type { Entry, NodeId } from '../../src/raft/types.js';
import { Env } from './env.js';

const data = (text: string): Uint8Array => new TextEncoder().encode(text);

function cluster(count: number, config: Record<string, unknown> = {}): Env {
    const env = new Env();
    env.addNodes({ count, config });
    return env;
}

function elect(env: Env, id: NodeId): void {
    env.core(id).campaignNow();
    env.stabilize([], true);
    assert.equal(env.core(id).status().soft.role, 'leader');
}

function sent(env: Env, filter: (m: Message) => boolean = () => true): Message[] {
    return env.queue.filter(filter);
}

function role(env: Env, id: NodeId): string {
    return env.core(id).status().soft.role;
}

function entry(index: number, term: number, text = ''): Entry {
    return { index, term, type: text === '' ? EntryType.barrier : EntryType.command, data: data(text) };
}

function append(from: NodeId, to: NodeId, o: Partial<AppendEntries> & { term: number }): AppendEntries {
    return { type: 'appendEntries', from, to, prevIndex: 0, prevTerm: 0, entries: [], commit: 0, readRound: 0, ...o };
}

test('§5.1: a request with a stale term is rejected and the reply carries the current term', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.core(2n).step(append(3n, 2n, { term: 1, prevIndex: 1, prevTerm: 1 }));
    env.processReady(2n, true);
    const reply = sent(env, (m) => m.from === 2n && m.to === 3n);
    assert.equal(reply.length, 1);
    assert.equal(reply[0]?.type, 'appendEntriesResponse');
    assert.equal(reply[0]?.term, 2);
    assert.equal((reply[0] as { success: boolean }).success, false);
});

test('§5.1: a server seeing a larger term adopts it; a leader that does steps down at once', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.core(1n).step({
        type: 'appendEntriesResponse', term: 7, from: 2n, to: 1n, success: false, index: 0, hintIndex: 0, hintTerm: 0,
        readRound: 0,
    });
    assert.equal(role(env, 1n), 'follower');
    assert.equal(env.core(1n).status().hardState.term, 7);
});

test('§5.2: a leader sends heartbeats (empty AppendEntries) every heartbeat interval', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.tick(1n);
    env.processReady(1n, true);
    const beats = sent(env, (m) => m.type === 'appendEntries' && m.entries.length === 0);
    assert.deepEqual(beats.map((m) => m.to).sort(), [2n, 3n]);
});

test('§5.2: election timeouts are randomized in [T, 2T) and a silent follower starts an election', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
        const b = bootstrap({
            servers: [{ id: 1n, address: 'a', role: 'voter' }, { id: 2n, address: 'b', role: 'voter' }],
        });
        const core = new RaftCore({ id: 1n, random: new SeededRandom(seed), electionTimeoutTicks: 10 },
            { hardState: b.hardState, snapshot: undefined, entries: b.entries, appliedIndex: 0 });
        let ticks = 0;
        while (core.status().soft.role === 'follower') {
            core.tick();
            ticks++;
            assert.ok(ticks < 20, 'no election within 2T');
        }
        assert.ok(ticks >= 10, `election after ${ticks} ticks`);
        assert.equal(core.status().soft.role, 'preCandidate');
        seen.add(ticks);
    }
    assert.ok(seen.size >= 5, `timeouts not spread: ${[...seen].join(',')}`);
});

test('§5.2: a candidate with votes from a majority becomes leader (5 servers, 3 votes)', () => {
    const env = cluster(5, { preVote: false });
    env.core(1n).campaignNow();
    env.processReady(1n, true);
    env.dropTo([4n, 5n]);
    env.deliver([2n, 3n], true);
    env.processReady(2n, true);
    env.processReady(3n, true);
    env.deliver([1n], true);
    assert.equal(role(env, 1n), 'leader');
});

test('§5.2: a server votes for at most one candidate per term, first come first served', () => {
    const env = cluster(3, { preVote: false });
    env.tick(3n, 10); // out of the leader lease (there is no leader yet anyway)
    const vote = (from: NodeId): Message => ({
        type: 'requestVote', term: 2, from, to: 3n, lastIndex: 1, lastTerm: 1, preVote: false, transfer: false,
    });
    env.core(3n).step(vote(1n) as never);
    env.core(3n).step(vote(2n) as never);
    env.processReady(3n, true);
    const replies = sent(env, (m) => m.type === 'requestVoteResponse');
    assert.deepEqual(replies.map((m) => [m.to, (m as { granted: boolean }).granted]), [[1n, true], [2n, false]]);
    // The vote survives a restart: it was persisted before the reply left.
    env.restart(3n);
    env.queue = [];
    env.core(3n).step(vote(2n) as never);
    env.processReady(3n, true);
    assert.equal((sent(env)[0] as { granted: boolean }).granted, false);
});

test('§5.2: a candidate that hears from a leader of its term returns to follower', () => {
    const env = cluster(3, { preVote: false });
    env.core(2n).campaignNow();
    assert.equal(role(env, 2n), 'candidate');
    env.core(2n).step(append(1n, 2n, { term: 2, prevIndex: 1, prevTerm: 1 }));
    assert.equal(role(env, 2n), 'follower');
    assert.equal(env.core(2n).status().soft.leader, 1n);
});

test('§5.2: a candidate rejected by a majority gives up the election', () => {
    const env = cluster(3, { preVote: false });
    env.core(1n).campaignNow();
    for (const from of [2n, 3n]) {
        env.core(1n).step({ type: 'requestVoteResponse', term: 2, from, to: 1n, granted: false, preVote: false });
    }
    assert.equal(role(env, 1n), 'follower');
});

test('§5.3: the leader appends a command and sends AppendEntries to the followers in parallel', () => {
    const env = cluster(3);
    elect(env, 1n);
    const { index, term } = env.core(1n).propose(data('x'));
    const ready = env.takeReady(1n, true);
    assert.deepEqual(ready?.entries.map((e) => e.index), [index]);
    const appends = ready?.messages.filter((m) => m.type === 'appendEntries') as AppendEntries[];
    assert.deepEqual(appends.map((m) => m.to).sort(), [2n, 3n]);
    assert.ok(appends.every((m) => m.entries.some((e) => e.index === index && e.term === term)));
});

test('§5.3: an entry is committed once the leader replicated it on a majority', () => {
    const env = cluster(5);
    elect(env, 1n);
    const { index } = env.core(1n).propose(data('x'));
    env.processReady(1n, true);
    env.dropTo([4n, 5n]);
    env.deliver([2n], true);
    env.processReady(2n, true);
    env.deliver([1n], true);
    assert.equal(env.core(1n).status().commitIndex, index - 1, 'two of five is not a majority');
    env.deliver([3n], true);
    env.processReady(3n, true);
    env.deliver([1n], true);
    assert.equal(env.core(1n).status().commitIndex, index);
});

test('§5.3: a follower refuses entries whose previous index and term it does not have', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.queue = [];
    env.core(2n).step(append(1n, 2n, { term: 2, prevIndex: 7, prevTerm: 2, entries: [entry(8, 2, 'x')] }));
    env.processReady(2n, true);
    const reply = sent(env)[0] as { success: boolean; hintIndex: number };
    assert.equal(reply.success, false);
    assert.equal(reply.hintIndex, 2, 'hint points at the follower log end');
    assert.equal(env.core(2n).status().lastIndex, 2);
});

test('§5.3: conflicting entries of a follower are deleted and replaced by the leader\'s', () => {
    const env = cluster(3);
    elect(env, 1n);
    // A stale leader of term 2 had given 2 an entry that was never committed.
    env.core(2n).step(append(1n, 2n, { term: 2, prevIndex: 2, prevTerm: 2, entries: [entry(3, 2, 'stale')] }));
    env.processReady(2n, true);
    env.core(2n).step(append(3n, 2n, { term: 3, prevIndex: 2, prevTerm: 2, entries: [entry(3, 3, 'new')] }));
    const ready = env.takeReady(2n, true);
    assert.equal(ready?.truncateFrom, 3);
    assert.deepEqual(ready?.entries.map((e) => `${e.index}@${e.term}`), ['3@3']);
});

test('§5.3: a follower commits up to min(leaderCommit, index of the last new entry)', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.core(2n).step(append(1n, 2n, { term: 2, prevIndex: 2, prevTerm: 2, entries: [entry(3, 2, 'a')], commit: 9 }));
    assert.equal(env.core(2n).status().commitIndex, 3);
});

test('§5.4.1: a voter denies its vote to a candidate whose log is less up-to-date', () => {
    const env = cluster(3, { preVote: false });
    elect(env, 1n);
    env.tick(3n, 10);
    env.queue = [];
    env.core(3n).step({ type: 'requestVote', term: 5, from: 2n, to: 3n, lastIndex: 1, lastTerm: 1, preVote: false,
        transfer: false });
    env.processReady(3n, true);
    assert.equal((sent(env)[0] as { granted: boolean }).granted, false);
    assert.equal(env.core(3n).status().hardState.term, 5, 'the term is still adopted');
});

test('§5.4.2: a leader never commits an entry of an earlier term by counting replicas (Figure 8)', () => {
    // Node 1 led term 2 and appended 3@2, which reached nobody; terms 3 came and went. Now 1
    // wins term 4, and 3@2 reaches a majority: that alone must not commit it. Only once the
    // term-4 no-op is on a majority are both committed.
    const servers = [1n, 2n, 3n, 4n, 5n].map((id) => ({ id, address: `n${id}`, role: 'voter' as const }));
    const b = bootstrap({ servers });
    const core = new RaftCore({ id: 1n, random: new SeededRandom(1), preVote: false }, {
        hardState: { term: 3, vote: 0n }, snapshot: undefined, appliedIndex: 0,
        entries: [...b.entries, entry(2, 2), entry(3, 2, 'old')],
    });
    core.campaignNow();
    for (const from of [2n, 3n]) {
        core.step({ type: 'requestVoteResponse', term: 4, from, to: 1n, granted: true, preVote: false });
    }
    assert.equal(core.status().soft.role, 'leader');
    const noop = core.ready();
    if (noop.lastEntry !== undefined) core.persisted(noop.lastEntry);
    const ack = (from: NodeId, index: number): void => core.step({
        type: 'appendEntriesResponse', term: 4, from, to: 1n, success: true, index, hintIndex: 0, hintTerm: 0,
        readRound: 0,
    });
    ack(2n, 3);
    ack(3n, 3);
    assert.equal(core.status().commitIndex, 0, 'the term-2 entry is not committed by counting replicas');
    ack(2n, 4);
    ack(3n, 4);
    assert.equal(core.status().commitIndex, 4, 'committing the term-4 no-op commits 3@2 with it');
});

test('§5.5: the leader retries AppendEntries to an unresponsive follower (probe on heartbeat)', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.partition([[1n, 2n], [3n]]);
    env.core(1n).propose(data('x'));
    env.processReady(1n, true);
    env.dropTo([3n]);
    for (let i = 0; i < 3; i++) {
        env.tick(1n);
        env.processReady(1n, true);
    }
    const retries = sent(env, (m) => m.to === 3n && m.type === 'appendEntries');
    assert.ok(retries.length >= 3, `only ${retries.length} messages to the silent follower`);
});

test('§5.3 (dissertation §10.2.1): the leader counts itself only once its own append is durable', () => {
    const env = cluster(3);
    elect(env, 1n);
    const { index } = env.core(1n).propose(data('x'));
    env.takeReady(1n, true);
    env.dropTo([3n]);
    env.deliver([2n], true);
    env.processReady(2n, true);
    env.deliver([1n], true);
    assert.ok(env.core(1n).status().commitIndex < index, 'committed with a non-durable leader copy');
    env.persist(1n);
    assert.equal(env.core(1n).status().commitIndex, index);
});

test('dissertation §3.10: transfer sends TimeoutNow once the target is caught up, and refuses proposals', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.core(1n).transferLeadership(1, 2n);
    assert.throws(() => env.core(1n).propose(data('x')), { code: 'ERR_BUSY' });
    env.processReady(1n, true);
    assert.ok(sent(env).some((m) => m.type === 'timeoutNow' && m.to === 2n));
    env.stabilize([], true);
    assert.equal(env.leader(), 2n);
});

test('dissertation §4.1: a configuration takes effect as soon as its entry is appended', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.core(1n).changeMembership(1, { kind: 'remove', id: 3n });
    assert.deepEqual(env.core(1n).status().soft.configuration.servers.map((s) => s.id), [1n, 2n]);
    env.processReady(1n, true);
    env.deliver([2n], true);
    assert.deepEqual(env.core(2n).status().soft.configuration.servers.map((s) => s.id), [1n, 2n]);
});

test('dissertation §4.1: only one membership change at a time, and none before a commit in the term', () => {
    const env = cluster(3);
    env.core(1n).campaignNow();
    env.stabilize([], true);
    env.core(1n).changeMembership(1, { kind: 'add', id: 4n, address: 'n4' });
    assert.throws(() => env.core(1n).changeMembership(2, { kind: 'add', id: 5n, address: 'n5' }),
        { code: 'ERR_MEMBERSHIP' });
    const fresh = cluster(3, { preVote: false });
    fresh.core(1n).campaignNow();
    fresh.processReady(1n, true);
    fresh.deliver([], true);
    fresh.processReady(2n, true);
    fresh.processReady(3n, true);
    fresh.deliver([1n], true);
    assert.equal(role(fresh, 1n), 'leader');
    assert.throws(() => fresh.core(1n).changeMembership(1, { kind: 'add', id: 4n, address: 'n4' }),
        { code: 'ERR_MEMBERSHIP' });
});

test('dissertation §4.2.2: a removed leader steps down once the change commits, handing over', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.core(1n).changeMembership(1, { kind: 'remove', id: 1n });
    env.stabilize([], true);
    assert.equal(role(env, 1n), 'follower');
    assert.ok(env.core(3n).status().commitIndex >= 3, 'the followers learned the commit before it left');
    assert.equal(env.leader(), 2n, 'TimeoutNow made the caught-up voter leader without a timeout');
});

test('dissertation §4.2.3: a server that heard from a leader recently ignores RequestVote', () => {
    const env = cluster(3, { preVote: false });
    elect(env, 1n);
    env.queue = [];
    env.core(2n).step({ type: 'requestVote', term: 9, from: 3n, to: 2n, lastIndex: 9, lastTerm: 9, preVote: false,
        transfer: false });
    env.processReady(2n, true);
    assert.equal(env.core(2n).status().hardState.term, 2);
    assert.equal(sent(env).length, 0);
    // ... unless the request comes from a leadership transfer.
    env.core(2n).step({ type: 'requestVote', term: 9, from: 3n, to: 2n, lastIndex: 9, lastTerm: 9, preVote: false,
        transfer: true });
    assert.equal(env.core(2n).status().hardState.term, 9);
});

test('dissertation §9.6: a pre-vote changes no term, and a partitioned server does not inflate its term', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.partition([[3n], [1n, 2n]]);
    for (let i = 0; i < 5; i++) {
        env.tick(3n, 20);
        env.processReady(3n, true);
        env.dropTo([]);
    }
    assert.equal(env.core(3n).status().hardState.term, 2);
    assert.equal(env.core(1n).status().hardState.term, 2);
});

test('dissertation §6.2: a leader that has not heard from a quorum for an election timeout steps down', () => {
    const env = cluster(3);
    elect(env, 1n);
    env.tick(1n, 10);
    assert.equal(role(env, 1n), 'leader', 'first period: the followers were active');
    env.tick(1n, 10);
    assert.equal(role(env, 1n), 'follower');
});

test('dissertation §6.4: ReadIndex waits for the term\'s first commit and needs a quorum round', () => {
    const env = cluster(3, { preVote: false });
    env.core(1n).campaignNow();
    env.processReady(1n, true);
    env.deliver([], true);
    env.processReady(2n, true);
    env.processReady(3n, true);
    env.deliver([1n], true);
    assert.equal(role(env, 1n), 'leader');
    env.core(1n).readIndex(7);
    env.processReady(1n, true);
    assert.equal(sent(env, (m) => m.type === 'appendEntries' && m.readRound > 0).length, 0, 'round before commit');
    // The no-op commits on the first acknowledgement; the round starts; one echo confirms it.
    env.deliver([2n], true);
    env.processReady(2n, true);
    env.deliver([1n], true);
    let ready = env.takeReady(1n, true);
    assert.deepEqual(ready?.readStates, [], 'released before any follower echoed the round');
    env.persist(1n);
    env.dropTo([3n]);
    env.deliver([2n], true);
    env.processReady(2n, true);
    env.deliver([1n], true);
    ready = env.takeReady(1n, true);
    assert.deepEqual(ready?.readStates, [{ requestId: 7, index: 2 }]);
});

test('dissertation §10.2.2: AppendEntries are pipelined up to the inflight bound', () => {
    const env = cluster(2, { inflightMessagesMax: 3 });
    elect(env, 1n);
    for (let i = 0; i < 6; i++) {
        env.core(1n).propose(data(`p${i}`));
        env.processReady(1n, true);
    }
    const appends = sent(env, (m) => m.type === 'appendEntries' && m.entries.length > 0);
    assert.equal(appends.length, 3, 'no more than 3 unacknowledged messages');
    env.stabilize([], true);
    assert.equal(env.core(2n).status().lastIndex, 8);
});

test('etcd fast back-off: a conflicting follower is repaired in a few round trips, not one per entry', () => {
    const env = cluster(5);
    elect(env, 1n);
    // 5 collects 50 entries of term 2 that never commit (1 lost its quorum right after).
    const junk = Array.from({ length: 50 }, (_, i) => entry(3 + i, 2, `junk${i}`));
    env.core(5n).step(append(1n, 5n, { term: 2, prevIndex: 2, prevTerm: 2, entries: junk }));
    env.processReady(5n, true);
    env.queue = [];
    env.partition([[1n, 5n], [2n, 3n, 4n]]);
    env.tick(3n, 10);
    env.tick(4n, 10);
    elect(env, 2n);
    for (let i = 0; i < 20; i++) env.core(2n).propose(data(`real${i}`));
    env.stabilize([2n, 3n, 4n], true);
    env.queue = [];
    env.cut.clear();
    env.tick(2n);
    let rejections = 0;
    for (let round = 0; round < 10; round++) {
        env.processReady(2n, true);
        env.deliver([5n], true);
        env.processReady(5n, true);
        rejections += env.queue.filter((m) => m.type === 'appendEntriesResponse' && !m.success).length;
        env.deliver([2n], true);
    }
    assert.ok(rejections <= 2, `${rejections} rejections`);
    assert.equal(env.core(5n).status().lastIndex, env.core(2n).status().lastIndex);
});

test('barriers commit and apply like commands', () => {
    const env = cluster(3);
    elect(env, 1n);
    const { index } = env.core(1n).barrier();
    env.stabilize([], true);
    assert.equal(env.node(1n).applied.at(-1)?.index, index);
    env.tick(1n); // a follower learns the commit index from the next heartbeat
    env.stabilize([], true);
    const applied = env.node(2n).applied.at(-1);
    assert.equal(applied?.index, index);
    assert.equal(applied?.type, EntryType.barrier);
});

test('dissertation §4.2.1: a promotion waits for catch-up rounds and gives up after the round limit', () => {
    const env = new Env();
    env.addNodes({ count: 1, config: { catchUpRoundsMax: 2, catchUpRoundTicksMax: 2 } });
    env.addNodes({ count: 1, empty: true, config: { catchUpRoundsMax: 2, catchUpRoundTicksMax: 2 } });
    elect(env, 1n);
    env.core(1n).changeMembership(1, { kind: 'add', id: 2n, address: 'n2' });
    env.stabilize([], true);
    const outcomes: string[] = [];
    const drain = (): void => {
        const ready = env.takeReady(1n, true);
        for (const o of ready?.outcomes ?? []) {
            outcomes.push(o.ok ? 'ok' : (o.error as unknown as { code: string }).code);
        }
        env.persist(1n);
    };
    env.core(1n).changeMembership(2, { kind: 'assign', id: 2n, role: 'voter' });
    // Each round the promotee answers only after the round limit, while new entries arrive.
    // A new entry is always proposed before the promotee's answer arrives, so no round ever
    // ends with nothing left to send, and each takes longer than the limit.
    for (let round = 0; round < 4; round++) {
        drain();
        env.tick(1n, 3);
        drain();
        env.deliver([2n], true);
        env.processReady(2n, true);
        env.core(1n).propose(data(`r${round}`));
        drain();
        env.deliver([1n], true);
        drain();
    }
    assert.deepEqual(outcomes, ['ERR_MEMBERSHIP']);
    assert.ok(env.output.some((line) => line.includes('not caught up after 2 rounds')), env.output.join('\n'));
    assert.equal(env.core(1n).status().soft.configuration.servers[1]?.role, 'spare');
});
