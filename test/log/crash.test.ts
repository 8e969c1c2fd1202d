// Goal: prove the log store survives a power cut at every point of a realistic workload
// (TESTING.md §8(d)): no acknowledged entry lost, no entry that was never written, term/vote
// never older than the last synced value, snapshots old-complete or new-complete, and recovery
// never reports corruption for a crash (only bit flips are corruption).
// Method: run a seeded workload (appends alone and in concurrent groups, truncations, snapshots
// with compaction, snapshot installs, term/vote updates, restarts, reads) on a SimFs and take a
// checkpoint after every mutating file-system operation (every op boundary). For each boundary
// build crash images: all pending ops dropped, all applied, every in-order prefix, each single
// pending op dropped, the last write torn at every sector, and seeded random subsets with
// random tears; more random variants at sync points. Each distinct image is recovered with
// LogStore.open and checked against the model (test/log/harness.ts). A second test crashes
// again in the middle of recovery's own repairs (a sample of first images, every repair op).
// Replay: SEED=<n> node --test build/test/log/crash.test.js

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.js';
import { SimFs, crashPlans } from '../../src/lib/sim-fs.js';
import { crc32c } from '../../src/lib/crc32c.js';
import { MUTATING, Model, checkRecovered, recover, runWorkload, variants } from './harness.js';
import type { Checkpoint } from './harness.js';

const SEED = Number(process.env.SEED ?? 20261125);
const STEPS = Number(process.env.STEPS ?? 720);

function imageKey(fs: SimFs): string {
    return fs.listFiles().map((f) => {
        const b = fs.peek(f);
        return `${f}:${b.length}:${crc32c(b)}`;
    }).join('|');
}

test(`every crash image of the workload recovers correctly (seed ${SEED})`, async () => {
    console.log(`seed ${SEED} (replay with SEED=${SEED})`);
    const fs = new SimFs({ dirs: ['/data'] });
    const model = new Model();
    const checkpoints: Checkpoint[] = [
        { image: fs.checkpoint(), acked: 0, issued: 0, isSyncPoint: false, kind: 'open' },
    ];
    fs.onOp = (event) => {
        if (!MUTATING.includes(event.kind)) return;
        checkpoints.push({ image: fs.checkpoint(), acked: model.acked, issued: model.issued,
            isSyncPoint: event.isSyncPoint, kind: event.kind });
    };
    await runWorkload(fs, model, { random: new SeededRandom(SEED), steps: STEPS });
    fs.onOp = undefined;

    const random = new SeededRandom(SEED).fork('crash');
    const seen = new Set<string>();
    let images = 0;
    let syncPoints = 0;
    const violations: string[] = [];
    for (const [i, cp] of checkpoints.entries()) {
        if (cp.isSyncPoint) syncPoints++;
        for (const plan of variants(cp, random)) {
            images++;
            const image = SimFs.fromCheckpoint(cp.image, plan);
            const key = imageKey(image);
            if (seen.has(key)) continue;
            seen.add(key);
            try {
                const r = await recover(image);
                for (const p of checkRecovered(r, model, cp.acked, cp.issued)) {
                    violations.push(`boundary ${i} (${cp.kind}, acked ${cp.acked}/${cp.issued}): ${p}`);
                }
            } catch (error) {
                violations.push(`boundary ${i} (${cp.kind}): recovery failed: ${String(error)}`);
            }
            if (violations.length > 20) break;
        }
        if (violations.length > 20) break;
    }
    console.log(`ops issued ${model.issued}, boundaries ${checkpoints.length} (sync points ${syncPoints}), ` +
        `crash images ${images}, distinct images recovered and checked ${seen.size}, violations ${violations.length}`);
    assert.deepEqual(violations.slice(0, 20), []);
    assert.ok(seen.size >= 10_000, `only ${seen.size} distinct crash images`);
});

test(`a crash during recovery is recovered too (seed ${SEED})`, async () => {
    // Recovery repairs (cuts torn tails, renames open segments, deletes leftovers); a second power
    // cut in the middle of those repairs must leave a state that recovers to the same answers.
    const fs = new SimFs({ dirs: ['/data'] });
    const model = new Model();
    const checkpoints: Checkpoint[] = [];
    fs.onOp = (event) => {
        if (!MUTATING.includes(event.kind)) return;
        checkpoints.push({ image: fs.checkpoint(), acked: model.acked, issued: model.issued,
            isSyncPoint: event.isSyncPoint, kind: event.kind });
    };
    await runWorkload(fs, model, { random: new SeededRandom(SEED + 1), steps: 120 });
    fs.onOp = undefined;
    const random = new SeededRandom(SEED).fork('double');
    let first = 0;
    let second = 0;
    const violations: string[] = [];
    for (let i = 0; i < checkpoints.length && violations.length === 0; i += 5) {
        const cp = checkpoints[i] as Checkpoint;
        const image = SimFs.fromCheckpoint(cp.image, crashPlans.random(random.fork(`a${i}`), 0.5, 0.3));
        const during: ReturnType<SimFs['checkpoint']>[] = [];
        image.onOp = (event) => {
            if (MUTATING.includes(event.kind)) during.push(image.checkpoint());
        };
        first++;
        try {
            await recover(image);
        } catch (error) {
            violations.push(`boundary ${i}: first recovery failed: ${String(error)}`);
            break;
        }
        for (const [k, mid] of during.entries()) {
            for (const plan of [crashPlans.dropAll(), crashPlans.random(random.fork(`b${i}.${k}`), 0.5, 0.3)]) {
                second++;
                try {
                    const r = await recover(SimFs.fromCheckpoint(mid, plan));
                    for (const p of checkRecovered(r, model, cp.acked, cp.issued)) {
                        violations.push(`boundary ${i}, recovery op ${k}: ${p}`);
                    }
                } catch (error) {
                    violations.push(`boundary ${i}, recovery op ${k}: second recovery failed: ${String(error)}`);
                }
            }
        }
    }
    console.log(`first recoveries ${first}, crash images taken during them and recovered ${second}`);
    assert.deepEqual(violations.slice(0, 10), []);
});
