// Goal: the leader's role adjustment (src/app.ts decideAdjustment, go-dqlite's RolesChanges.Adjust)
// repairs every role layout it can: too many voters or standbys (four joiners racing through
// Assume all promote themselves: the CI failure "7 nodes: voter×3, standby×4"), too few, offline
// holders, voters crowded in one failure domain; it never demotes the leader, never promotes an
// offline member, and never shrinks the voters while it cannot replace them. Role options that make
// no sense (an even number of voters, negative counts, zero intervals) are refused up front. A
// closing member's replacement (chooseReplacement, go-dqlite's RolesChanges.Handover) is the best
// online member of the role below its own, in the same candidate order; a closing leader's
// successor (chooseTransferTarget) the most up-to-date voter that answers and was heard from.
// Method: hand-written layouts with the exact change expected, then a seeded random search
// (SEED=n replays; printed) over layouts of 1-9 members with random roles, online-ness, failure
// domains and weights: apply decideAdjustment's change and ask again until it returns nothing,
// within a bound, and check the end state and every step.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
    chooseReplacement, chooseTransferTarget, decideAdjustment, orderCandidates, orderDemotions, validateRoleOptions,
    type MemberState, type RoleChange,
} from '../src/app.js';
import { ConfigError } from '../src/lib/errors.js';
import { SeededRandom } from '../src/lib/random.js';
import type { Role } from '../src/raft/types.js';

const TARGETS = { voters: 3, standbys: 3 };
const LEADER = 1n;

/** `v` voter, `s` standby, `p` spare; a trailing `!` = offline; `@d` failure domain; `*w` weight. */
function layout(spec: string): MemberState[] {
    return spec.split(' ').map((token, i) => {
        const m = /^([vsp])(?:@(\d+))?(?:\*(\d+))?(!?)$/.exec(token);
        assert.ok(m !== null, `bad token ${token}`);
        const role: Role = m[1] === 'v' ? 'voter' : m[1] === 's' ? 'standby' : 'spare';
        const metadata = m[4] === '!' ? undefined : { failureDomain: BigInt(m[2] ?? 0), weight: BigInt(m[3] ?? 0) };
        return { id: BigInt(i + 1), role, metadata };
    });
}

function apply(members: readonly MemberState[], change: RoleChange): MemberState[] {
    return members.map((m) => (m.id === change.id ? { ...m, role: change.role } : m));
}

/** Applies changes until none is left; returns the end state and the changes. */
function settle(members: readonly MemberState[], bound = 3 * members.length + 1): {
    end: MemberState[]; changes: RoleChange[];
} {
    let state = [...members];
    const changes: RoleChange[] = [];
    for (;;) {
        const change = decideAdjustment(state, LEADER, TARGETS);
        if (change === undefined) return { end: state, changes };
        changes.push(change);
        assert.ok(changes.length <= bound, `did not settle: ${changes.map(describe).join(', ')}`);
        state = apply(state, change);
    }
}

function describe(c: RoleChange): string {
    return `${c.id}→${c.role}(${c.reason})`;
}

function roles(members: readonly MemberState[]): string {
    return members.map((m) => (m.role === 'spare' ? 'p' : m.role[0])).join('');
}

test('one member: nothing to do', () => {
    assert.equal(decideAdjustment(layout('v'), LEADER, TARGETS), undefined);
});

test('two members: the other voter becomes a spare, never the leader', () => {
    assert.deepEqual(decideAdjustment(layout('v v'), LEADER, TARGETS),
        { id: 2n, role: 'spare', reason: 'small cluster' });
    assert.equal(decideAdjustment(layout('v p'), LEADER, TARGETS), undefined);
});

test('the CI failure: 3 voters and 4 standbys end as 3 voters, 3 standbys, 1 spare', () => {
    const { end, changes } = settle(layout('v v v s s s s'));
    // The newest standby (last in the configuration) goes: the one that raced in last.
    assert.deepEqual(changes, [{ id: 7n, role: 'spare', reason: 'excess' }]);
    assert.equal(roles(end), 'vvvsssp');
});

test('four voters: the excess voter becomes a standby when standbys are short, else a spare', () => {
    assert.deepEqual(decideAdjustment(layout('v v v v s s p'), LEADER, TARGETS),
        { id: 4n, role: 'standby', reason: 'excess' });
    assert.deepEqual(decideAdjustment(layout('v v v v s s s'), LEADER, TARGETS),
        { id: 4n, role: 'spare', reason: 'excess' });
    assert.equal(roles(settle(layout('v v v v v')).end), 'vvvss');
});

test('the excess voter is the worst: a crowded failure domain, then the higher weight; never the leader', () => {
    // Leader heaviest and in the crowded domain: still not chosen.
    const standbys = 's@1 s@2 s@3';
    assert.deepEqual(decideAdjustment(layout(`v@1*9 v@1*1 v@2*5 v@3*7 ${standbys}`), LEADER, TARGETS),
        { id: 2n, role: 'spare', reason: 'excess' });
    // Same domain for all: the heaviest non-leader.
    assert.deepEqual(decideAdjustment(layout('v*1 v*3 v*8 v*2 s s s'), LEADER, TARGETS),
        { id: 3n, role: 'spare', reason: 'excess' });
});

test('short of voters: online standbys first, a new failure domain first, then lower weight', () => {
    const short = (id: bigint): RoleChange => ({ id, role: 'voter', reason: 'short' });
    assert.deepEqual(decideAdjustment(layout('v v s*5 p*1'), LEADER, TARGETS), short(3n));
    assert.deepEqual(decideAdjustment(layout('v@1 v@2 s@1*1 s@3*9 s@2*0'), LEADER, TARGETS), short(4n));
    assert.deepEqual(decideAdjustment(layout('v v s*5 s*2! s*3'), LEADER, TARGETS), short(5n));
});

test('offline voters: replaced first, demoted once enough online voters hold the role', () => {
    const { end, changes } = settle(layout('v v v! s p'));
    assert.deepEqual(changes.slice(0, 2), [
        { id: 4n, role: 'voter', reason: 'short' },
        { id: 3n, role: 'spare', reason: 'offline' },
    ]);
    assert.equal(roles(end), 'vvpvs');
    // Nobody to promote: keep the offline voter (demoting it would only shrink the quorum).
    assert.equal(decideAdjustment(layout('v v v! p!'), LEADER, TARGETS), undefined);
});

test('standbys: promoted from online spares, excess and offline ones demoted', () => {
    assert.deepEqual(decideAdjustment(layout('v v v s p'), LEADER, TARGETS),
        { id: 5n, role: 'standby', reason: 'short' });
    assert.deepEqual(decideAdjustment(layout('v v v s s s! p'), LEADER, TARGETS),
        { id: 7n, role: 'standby', reason: 'short' });
    assert.deepEqual(decideAdjustment(layout('v v v s s s s! p'), LEADER, TARGETS),
        { id: 7n, role: 'spare', reason: 'offline' });
    assert.equal(decideAdjustment(layout('v v v s s s p p'), LEADER, TARGETS), undefined);
});

test('voters crowded in one failure domain are spread to the others', () => {
    const { end, changes } = settle(layout('v@1 v@1 v@1 s@2 s@3 s@1'));
    assert.deepEqual(changes[0], { id: 4n, role: 'voter', reason: 'spread domains' });
    const voterDomains = new Set(end.filter((m) => m.role === 'voter').map((m) => m.metadata?.failureDomain));
    assert.deepEqual([...voterDomains].sort(), [1n, 2n, 3n]);
    assert.equal(end.filter((m) => m.role === 'voter').length, 3);
    assert.equal(end.filter((m) => m.role === 'standby').length, 3);
});

test('candidate and demotion orders', () => {
    const members = layout('p@1*5 p@2*5 p@1*1 p@3*0');
    assert.deepEqual(orderCandidates(members, new Set([1n])).map((m) => m.id), [4n, 2n, 3n, 1n]);
    assert.deepEqual(orderDemotions(members).map((m) => m.id), [1n, 3n, 2n, 4n]);
});

test('random layouts settle to the best roles reachable, seeded', () => {
    const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
    console.log(`# seed ${seed} (SEED=${seed} replays)`);
    const random = new SeededRandom(seed);
    const roleOf = ['voter', 'standby', 'spare'] as const;
    for (let round = 0; round < 2_000; round++) {
        const size = 1 + random.int(9);
        const members: MemberState[] = Array.from({ length: size }, (_, i) => ({
            id: BigInt(i + 1),
            // The leader is an online voter.
            role: i === 0 ? 'voter' : roleOf[random.int(3)] as Role,
            metadata: i > 0 && random.int(4) === 0 ? undefined
                : { failureDomain: BigInt(random.int(3)), weight: BigInt(random.int(4)) },
        }));
        const where = `seed ${seed} round ${round}: ${JSON.stringify(members, (_k, v: unknown) =>
            (typeof v === 'bigint' ? Number(v) : v))}`;
        let state = members;
        for (let steps = 0; ; steps++) {
            const change = decideAdjustment(state, LEADER, TARGETS);
            if (change === undefined) break;
            assert.ok(steps < 3 * size + 1, `no end: ${where}`);
            assert.notEqual(change.id, LEADER, `the leader demoted: ${where}`);
            const target = state.find((m) => m.id === change.id);
            assert.ok(target !== undefined && target.role !== change.role, `no-op change: ${where}`);
            if (target.metadata === undefined) assert.equal(change.role, 'spare', `offline promoted: ${where}`);
            state = apply(state, change);
        }
        const online = state.filter((m) => m.metadata !== undefined);
        const count = (role: Role, on = true): number =>
            state.filter((m) => m.role === role && (m.metadata !== undefined) === on).length;
        if (size < 3) {
            assert.equal(count('voter') + count('voter', false), 1, `small cluster: ${where}`);
            continue;
        }
        assert.equal(count('voter'), Math.min(3, online.length), `voters: ${where}`);
        assert.equal(count('standby'), Math.min(3, online.length - count('voter')), `standbys: ${where}`);
        if (count('voter') === 3) assert.equal(count('voter', false), 0, `offline voter kept: ${where}`);
        if (count('standby') === 3) assert.equal(count('standby', false), 0, `offline standby kept: ${where}`);
    }
});

test('handover: a voter is replaced by the best online standby, else spare; a standby by a spare', () => {
    const pick = (spec: string, self: bigint): bigint | undefined => chooseReplacement(layout(spec), self)?.id;
    // Voter 1 leaves: standbys before spares, offline ones never.
    assert.equal(pick('v v v s p', 1n), 4n);
    assert.equal(pick('v v v s! p', 1n), 5n);
    assert.equal(pick('v v v s! p!', 1n), undefined);
    // A failure domain the other voters lack first, then lower weight, then configuration order.
    assert.equal(pick('v@1 v@1 v@2 s@1 s@3', 1n), 5n);
    assert.equal(pick('v v v s*5 s*2', 1n), 5n);
    assert.equal(pick('v v v s s', 1n), 4n);
    // Standby 4 leaves: only spares take it (never a voter, whatever its domain).
    assert.equal(pick('v v v s p@2 p@1', 4n), 5n);
    assert.equal(pick('v v v s@1 s@2 p@2 p@3', 4n), 7n);
    assert.equal(pick('v v v s', 4n), undefined);
    // A spare hands nothing over; an unknown id neither.
    assert.equal(pick('v v v p p', 4n), undefined);
    assert.equal(pick('v v v', 9n), undefined);
});

test('handover: leadership goes to the most up-to-date voter that answers and was heard from', () => {
    const members = layout('v v v v v s');
    const all = new Set(members.map((m) => m.id));
    const contacted = new Map<bigint, number>([[1n, 90], [2n, 80], [3n, 85], [4n, 85], [5n, 99], [6n, 100]]);
    const pick = (online: Set<bigint>, heard: Map<bigint, number>): bigint | undefined =>
        chooseTransferTarget(members, 1n, online, heard);
    assert.equal(pick(all, contacted), 5n);
    // Not online, or not heard from: passed over; never itself, never a standby; ties: first.
    assert.equal(pick(new Set([1n, 2n, 3n, 4n, 6n]), contacted), 3n);
    assert.equal(pick(all, new Map([...contacted].filter(([id]) => id !== 5n))), 3n);
    assert.equal(pick(new Set([1n, 6n]), contacted), undefined);
});

test('role options: an even, zero or fractional voter count and bad intervals are refused', () => {
    for (const roles of [{ voters: 2 }, { voters: 0 }, { voters: 4 }, { voters: 1.5 }, { voters: -1 },
        { standbys: -1 }, { standbys: 0.5 }, { adjustIntervalMs: 0 }, { joinRetryMs: Number.NaN },
        { handoverTimeoutMs: -5 }]) {
        assert.throws(() => validateRoleOptions(roles), (error: unknown) =>
            error instanceof ConfigError && error.code === 'ERR_CONFIG', JSON.stringify(roles));
    }
    for (const roles of [undefined, {}, { voters: 1 }, { voters: 3, standbys: 0 }, { voters: 5, standbys: 2 },
        { adjustIntervalMs: 1, joinRetryMs: 10, handoverTimeoutMs: 100 }]) {
        assert.doesNotThrow(() => validateRoleOptions(roles), JSON.stringify(roles));
    }
});
