// Goal: the raft core keeps every safety property and recovers after faults, over a fresh set of
// at least 1,000 seeds per run plus every seed in the permanent regression list
// (test/sim/regression-seeds.txt).
// Method: run the seeds on 2 worker threads; each seed is a full chaos + healed simulation
// (test/sim/simulation.ts), every node's log on the real LogStore over SimFs, crashes cutting
// SimFs's power. The fresh base changes each run (from the time, or SIM_BASE) and is
// printed with the repro command of every failing seed; SIM_SEEDS overrides the count. The
// coverage of the "sometimes" counters is printed so a green run can be seen to mean something.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { coverageLines, failureLines, summaryLines } from './report.js';
import { runSeeds } from './runner.js';

const regressionFile = new URL('../../../test/sim/regression-seeds.txt', import.meta.url);

function regressionSeeds(): number[] {
    const seeds: number[] = [];
    for (const line of readFileSync(regressionFile, 'utf8').split('\n')) {
        const text = line.replace(/#.*$/, '').trim();
        if (text === '') continue;
        const seed = Number(text);
        assert.ok(Number.isSafeInteger(seed), `bad regression seed line: ${line}`);
        seeds.push(seed);
    }
    return seeds;
}

test('fresh seeds and regression seeds pass', async () => {
    const count = Number(process.env['SIM_SEEDS'] ?? 1000);
    const base = Number(process.env['SIM_BASE'] ?? (Date.now() % 1_000_000_000));
    const fresh = Array.from({ length: count }, (_, i) => base + i);
    const regression = regressionSeeds();
    console.log(`simulator: fresh seeds ${base}..${base + count - 1} (SIM_BASE=${base}), ` +
        `${regression.length} regression seeds`);
    const started = performance.now();
    const results = await runSeeds([...regression, ...fresh], { workers: 2 });
    const wallMs = performance.now() - started;
    for (const line of coverageLines(results)) console.log(line);
    for (const line of summaryLines(results, wallMs)) console.log(line);
    const failures = failureLines(results);
    for (const line of failures) console.log(line);
    assert.deepEqual(failures, []);
});
