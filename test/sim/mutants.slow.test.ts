// Goal: the simulator is sensitive (TESTING.md §8(a)): every planted raft or storage bug in
// test/sim/mutants.ts is caught within a fixed budget of seeds, so a change that blinds the
// harness (a checker that stops checking, a disk model that forgets to lose data) fails CI.
// Method: run the mutants script as a child process on this build (seeds 1..100, fixed, so a
// failure replays with the same command) and require its exit code 0 (every mutant applied and
// caught); its table is printed either way.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('every planted bug is caught by the simulator within 100 seeds', () => {
    const script = fileURLToPath(new URL('./mutants.js', import.meta.url));
    const src = fileURLToPath(new URL('../../src', import.meta.url));
    const args = [script, '--seeds', '100', '--from', '1', '--workers', '2', '--src', src];
    const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 600_000 });
    const table = run.stdout.slice(run.stdout.indexOf('| mutant |'));
    console.log(table);
    assert.equal(run.status, 0, `node ${args.join(' ')} exited with ${run.status} (${run.signal ?? 'no signal'})\n`
        + `${run.stdout.split('\n').filter((l) => /^(survived|not applied|error)/.test(l)).join('\n')}\n${run.stderr}`);
});
