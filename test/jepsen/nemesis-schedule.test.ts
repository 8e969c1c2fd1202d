// Goal: the nemesis schedule (nemesis/nemesis.ts) is a pure function of the seed, so `--seed`
// replays it, and each profile really produces the faults it is named for.
// Method: draw 500 steps twice from the same printed seed and compare them; draw from another
// seed and expect a difference; count fault kinds per profile (kill / pause / disk-full lead theirs,
// network faults outnumber process faults in the partition profile, every listed kind occurs, a
// combined step mixes a process fault with a network fault, disabled kinds never appear,
// targets stay within the cluster). SEED=N replays.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.js';
import { PROFILES, schedule, type FaultKind, type Profile, type Step } from './nemesis/nemesis.js';

const seed = process.env['SEED'] !== undefined ? Number(process.env['SEED']) : Date.now() % 2 ** 31;
console.log(`# seed ${seed} (SEED=${seed} replays)`);

function draw(s: number, profile: Profile, n: number, count: number, disabled: FaultKind[] = []): Step[] {
    const steps = schedule(new SeededRandom(s), profile, n, disabled);
    return Array.from({ length: count }, () => steps.next().value as Step);
}

const PROCESS = new Set<FaultKind>(['kill', 'kill-majority', 'pause', 'stop', 'member', 'disk-full']);

test('the same seed gives the same schedule; another seed another one', () => {
    for (const profile of Object.keys(PROFILES) as Profile[]) {
        assert.deepEqual(draw(seed, profile, 5, 500), draw(seed, profile, 5, 500), profile);
        assert.notDeepEqual(draw(seed, profile, 5, 500), draw(seed + 1, profile, 5, 500), profile);
    }
});

test('each profile leads with its kind of fault; combined steps mix families; disabled kinds stay out', () => {
    const leading: Record<Profile, FaultKind[]> = {
        kill: ['kill'], pause: ['pause'], partition: [], mixed: [], disk: ['disk-full'],
    };
    for (const profile of Object.keys(PROFILES) as Profile[]) {
        const steps = draw(seed, profile, 3, 2_000, ['member']);
        const counts = new Map<FaultKind, number>();
        for (const step of steps) {
            assert.ok(step.gapMs >= 500 && step.gapMs <= 2_500);
            if (step.plans.length === 2) {
                const [a, b] = step.plans as [Step['plans'][0], Step['plans'][0]];
                assert.notEqual(PROCESS.has(a.kind), PROCESS.has(b.kind), `${profile}: ${a.kind} with ${b.kind}`);
            }
            for (const p of step.plans) {
                counts.set(p.kind, (counts.get(p.kind) ?? 0) + 1);
                assert.notEqual(p.kind, 'member');
                assert.ok(p.pick >= 0 && p.pick < 3);
                assert.deepEqual([...p.shuffle].sort(), [0, 1, 2]);
            }
        }
        const others = [...counts].filter(([k]) => !leading[profile].includes(k)).map(([, c]) => c);
        for (const kind of leading[profile]) {
            assert.ok((counts.get(kind) ?? 0) > Math.max(...others), `${profile} leads with ${kind}`);
        }
        if (profile === 'partition') {
            // Network faults outnumber process faults (those come mostly from combined steps).
            const family = (process: boolean): number =>
                [...counts].filter(([k]) => PROCESS.has(k) === process).reduce((sum, [, c]) => sum + c, 0);
            assert.ok(family(false) > family(true), `partition: network ${family(false)}, process ${family(true)}`);
        }
        for (const kind of Object.keys(PROFILES[profile]) as FaultKind[]) {
            if (kind !== 'member') assert.ok((counts.get(kind) ?? 0) > 0, `${profile} never drew ${kind}`);
        }
    }
});
