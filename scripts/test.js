#!/usr/bin/env node
// Runs the compiled test suite with node:test, in ONE `node --test` run (CI reads its single
// summary). Fast suites are every build/test/**/*.test.js; slow multi-process suites are named
// *.slow.test.js and run unless --fast is given. Extra arguments that are paths (or substrings
// of paths) select test files. TQLITE_TEST_BUILD names the build directory (default build).
// node --test runs the files in path order, whatever order they are given in.
//
// Two files run at a time, but never two slow suites: scripts/test-slow-lock.js, preloaded
// into every test process, makes a slow suite wait until the slow suite before it has exited
// (the waiting file holds one of the two slots meanwhile). Side by side on CI's 2 cores, two
// suites of real processes starved each other (formation's 10 s bound, churn's write gaps)
// and raced for loopback ports. --parallel-slow lifts the lock (to measure, or to reproduce).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = new URL('..', import.meta.url).pathname;
const buildTest = join(root, process.env.TQLITE_TEST_BUILD ?? 'build', 'test');
const args = process.argv.slice(2);
const fast = args.includes('--fast');
const parallelSlow = args.includes('--parallel-slow');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir) {
    const out = [];
    for (const name of readdirSync(dir).sort()) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) out.push(...walk(path));
        else if (name.endsWith('.test.js')) out.push(path);
    }
    return out;
}

let files = walk(buildTest).map((f) => relative(root, f));
if (fast) files = files.filter((f) => !f.endsWith('.slow.test.js'));
if (filters.length > 0) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
    console.error('no test files selected');
    process.exit(1);
}
const lockDir = mkdtempSync(join(tmpdir(), 'tqlite-test-'));
const env = { ...process.env, TQLITE_SLOW_LOCK_DIR: parallelSlow ? '' : lockDir };
const lock = pathToFileURL(join(root, 'scripts', 'test-slow-lock.js')).href;
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--import', lock, ...files], {
    cwd: root,
    env,
    stdio: 'inherit',
});
rmSync(lockDir, { recursive: true, force: true });
process.exit(result.status ?? 1);
