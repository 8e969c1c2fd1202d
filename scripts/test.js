#!/usr/bin/env node
// Runs the compiled test suite with node:test. Fast suites are every build/test/**/*.test.js;
// slow multi-process suites are named *.slow.test.js and run unless --fast is given.
// Extra arguments that are paths (or substrings of paths) select test files.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const buildTest = join(root, 'build', 'test');
const args = process.argv.slice(2);
const fast = args.includes('--fast');
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
// Fast files first so a broken unit shows up before the long suites start.
files.sort((a, b) => Number(a.endsWith('.slow.test.js')) - Number(b.endsWith('.slow.test.js')) || a.localeCompare(b));
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], {
    cwd: root,
    stdio: 'inherit',
});
process.exit(result.status ?? 1);
