// Goal: two processes that claim one data directory at the same time never both hold it, in
// any order of their file-system steps; in particular when both find the claim of a process
// that is gone (the takeover race of the former single LOCK file: both judged it stale, one
// replaced it, the other then deleted the fresh one and replaced it too). When one claimant
// finishes before the other begins, the first holds the directory and the second is refused.
// Method: dir-lock.ts's claimDirectory() for two made-up live processes A and B (and dead ones)
// on a real temporary directory, through a file system whose every operation waits for a
// scheduler's permission. The scheduler lets exactly one operation run at a time and waits for
// its claimant to reach its next operation (or finish) before choosing again, so a run is a
// sequence of choices; the test runs every sequence (depth-first, replaying a prefix of
// choices and branching at the first new choice point), for each starting state: no LOCK/, a
// stale claim, and a LOCK file of the first version naming a dead process (there, the runs with
// at most 3 preemptions). Deterministic: no timing, no sleeps.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deferred } from '../../src/lib/deferred.js';
import { StorageError } from '../../src/lib/errors.js';
import { claimDirectory, claimName, type LockOwner } from '../../src/node/dir-lock.js';
import { hookedFs } from './hooked-fs.js';

const A: LockOwner = { pid: 1001, startTime: '11' };
const B: LockOwner = { pid: 1002, startTime: '12' };
const DEAD: LockOwner = { pid: 1003, startTime: '13' };
const live = new Set([claimName(A), claimName(B)]);
const isAlive = (owner: LockOwner): boolean => live.has(claimName(owner));

let root = '';

before(() => {
    root = mkdtempSync(join(tmpdir(), 'tqlite-lock-race-'));
});

after(() => {
    rmSync(root, { recursive: true, force: true });
});

interface Claimant {
    readonly owner: LockOwner;
    /** Set while its next operation waits for permission. */
    waiting: (() => void) | undefined;
    /** Resolves when it waits for permission or finished. */
    event: Deferred<void>;
    result: { claim: string } | { error: unknown } | undefined;
    /** Index, in the run's sequence of operations, of its first and last operation. */
    first: number;
    last: number;
}

interface Run {
    readonly claimants: Claimant[];
    /** The choices made where both could go on: [chosen index, options]. */
    readonly choices: [number, number][];
}

/**
 * One run: `prefix` says whom to let go at each of the first choice points (then always the
 * first). After `preemptionsMax` switches away from a claimant that could go on, the one that
 * ran last goes on while it can (no choice point then).
 */
async function runOnce(dir: string, prefix: readonly number[], preemptionsMax: number): Promise<Run> {
    const claimants: Claimant[] = [A, B].map((owner) => ({
        owner, waiting: undefined, event: new Deferred<void>(), result: undefined, first: -1, last: -1,
    }));
    let step = 0;
    const start = (c: Claimant): void => {
        const fs = hookedFs(async () => {
            const permitted = new Deferred<void>();
            c.waiting = () => permitted.resolve();
            c.event.resolve();
            await permitted.promise;
        });
        claimDirectory({ fs, dataDir: dir, self: c.owner, isAlive }).then(
            (claim) => { c.result = { claim }; },
            (error: unknown) => { c.result = { error }; },
        ).finally(() => c.event.resolve());
    };
    const choices: [number, number][] = [];
    let previous: Claimant | undefined;
    let preemptions = 0;
    claimants.forEach(start);
    for (;;) {
        await Promise.all(claimants.map((c) => c.event.promise));
        const ready = claimants.filter((c) => c.waiting !== undefined);
        if (ready.length === 0) break;
        let pick = 0;
        const canGoOn = previous !== undefined && ready.includes(previous);
        if (canGoOn && preemptions >= preemptionsMax) {
            pick = ready.indexOf(previous as Claimant);
        } else if (ready.length > 1) {
            pick = prefix[choices.length] ?? 0;
            choices.push([pick, ready.length]);
            if (canGoOn && ready[pick] !== previous) preemptions++;
        }
        const c = ready[pick] as Claimant;
        previous = c;
        const go = c.waiting as () => void;
        c.waiting = undefined;
        c.event = new Deferred<void>();
        if (c.first < 0) c.first = step;
        c.last = step++;
        go();
    }
    return { claimants, choices };
}

/** The next prefix in depth-first order, or undefined when every sequence was run. */
function nextPrefix(choices: readonly [number, number][]): number[] | undefined {
    for (let i = choices.length - 1; i >= 0; i--) {
        const [chosen, options] = choices[i] as [number, number];
        if (chosen + 1 < options) return [...choices.slice(0, i).map(([c]) => c), chosen + 1];
    }
    return undefined;
}

function describeRun(run: Run): string {
    return run.claimants.map((c) => `${c.owner.pid}: ops ${c.first}..${c.last} `
        + ('claim' in (c.result ?? {}) ? 'holds' : `refused (${String((c.result as { error: unknown }).error)})`))
        .join('; ') + ` choices ${JSON.stringify(run.choices.map(([c]) => c))}`;
}

function checkRun(run: Run, dir: string): void {
    const what = describeRun(run);
    const holders = run.claimants.filter((c) => c.result !== undefined && 'claim' in c.result);
    for (const c of run.claimants) {
        assert.ok(c.result !== undefined, `${what}: a claimant did not finish`);
        if ('error' in c.result) {
            assert.ok(c.result.error instanceof StorageError, `${what}: not a StorageError`);
            assert.match(c.result.error.message, /in use by process 100[12]/, what);
        }
    }
    assert.ok(holders.length <= 1, `both hold the directory: ${what}`);
    const [a, b] = run.claimants as [Claimant, Claimant];
    const sequential = a.last < b.first ? a : b.last < a.first ? b : undefined;
    if (sequential !== undefined) assert.deepEqual(holders, [sequential], `the first one must hold it: ${what}`);
    // On disk: the holder's claim, and the dead process's claim only if nobody holds it (a
    // holder removes the stale claims it saw; refused claimants remove nothing but their own).
    const left = readdirSync(join(dir, 'LOCK')).filter((n) => holders.length > 0 || n !== claimName(DEAD));
    assert.deepEqual(left, holders.map((c) => claimName(c.owner)), what);
}

/**
 * Runs every interleaving with at most `preemptionsMax` preemptions from the state `prepare`
 * makes; returns how many there were.
 */
async function everyInterleaving(name: string, prepare: (dir: string) => void, preemptionsMax = Infinity,
): Promise<number> {
    let prefix: number[] | undefined = [];
    let runs = 0;
    let sequentialRuns = 0;
    while (prefix !== undefined) {
        const dir = join(root, `${name}-${runs++}`);
        mkdirSync(dir);
        prepare(dir);
        const run = await runOnce(dir, prefix, preemptionsMax);
        checkRun(run, dir);
        const [a, b] = run.claimants as [Claimant, Claimant];
        if (a.last < b.first || b.last < a.first) sequentialRuns++;
        prefix = nextPrefix(run.choices);
        rmSync(dir, { recursive: true });
    }
    assert.equal(sequentialRuns, 2, 'both sequential orders were run');
    return runs;
}

test('every interleaving of two claimants of a directory with a stale claim: at most one holds it', async () => {
    const runs = await everyInterleaving('stale-claim', (dir) => {
        mkdirSync(join(dir, 'LOCK'));
        writeFileSync(join(dir, 'LOCK', claimName(DEAD)), '');
    });
    console.log(`stale claim: ${runs} interleavings`);
    assert.ok(runs > 2);
});

test('every interleaving with up to 3 preemptions of two claimants of a first-version LOCK file', async () => {
    // Its steps are many (7000 interleavings without a bound, 30 s): preemptions are bounded as
    // CHESS bounds them (230 interleavings); the takeover race of the former scheme needs 2.
    const runs = await everyInterleaving('legacy-file', (dir) => {
        writeFileSync(join(dir, 'LOCK'), `${DEAD.pid} ${DEAD.startTime}\n`);
    }, 3);
    console.log(`first-version LOCK file: ${runs} interleavings`);
    assert.ok(runs > 2);
});

test('every interleaving of two claimants of a new directory', async () => {
    const runs = await everyInterleaving('new', () => undefined);
    console.log(`new directory: ${runs} interleavings`);
    assert.ok(runs > 2);
});

test('a claim of this process left behind is taken again; a foreign file in LOCK/ is ignored', async () => {
    const dir = join(root, 'own-claim');
    mkdirSync(join(dir, 'LOCK'), { recursive: true });
    writeFileSync(join(dir, 'LOCK', claimName(A)), '');
    writeFileSync(join(dir, 'LOCK', 'README'), 'not a claim');
    const fs = hookedFs(() => undefined);
    const claim = await claimDirectory({ fs, dataDir: dir, self: A, isAlive });
    assert.equal(claim, join(dir, 'LOCK', claimName(A)));
    assert.ok(existsSync(claim));
    assert.deepEqual(readdirSync(join(dir, 'LOCK')).sort(), [claimName(A), 'README']);
});
