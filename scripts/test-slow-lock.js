// Preloaded by scripts/test.js (node --import) into every test file's process: a slow suite
// (*.slow.test.js) waits here until no other slow suite of the same run holds the lock, so the
// multi-process cluster suites never run beside each other while fast files still run two at a
// time. Why: two slow suites side by side on CI's 2 cores starve each other's real processes
// (formation's 10 s bound, churn's 2 s write gaps) and race for loopback ports.
// The lock is a file holding the owner's pid, created exclusively in the directory that
// scripts/test.js names in TQLITE_SLOW_LOCK_DIR; the owner removes it when it exits, and a
// lock whose owner died without that (SIGKILL) is taken over. At concurrency 2 at most one
// process waits, so two processes never take over the same stale lock.

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const lockDir = process.env.TQLITE_SLOW_LOCK_DIR;
const file = process.argv[1] ?? '';

function isAlive(pid) {
    try {
        process.kill(pid, 0);
        return true;
    } catch (error) {
        return error.code === 'EPERM';
    }
}

async function acquire(path) {
    for (;;) {
        try {
            writeFileSync(path, String(process.pid), { flag: 'wx' });
            return;
        } catch (error) {
            if (error.code !== 'EEXIST') throw error;
        }
        let owner = Number.NaN;
        try {
            owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
        } catch {
            continue; // released between our attempt and the read
        }
        if (Number.isInteger(owner) && !isAlive(owner)) {
            rmSync(path, { force: true });
            continue;
        }
        // Not a synchronisation sleep in a test: a poll for another process's exit.
        await new Promise((resolve) => setTimeout(resolve, 200));
    }
}

if (lockDir !== undefined && lockDir !== '' && file.endsWith('.slow.test.js')) {
    const path = join(lockDir, 'slow-suite.lock');
    await acquire(path);
    process.on('exit', () => {
        try {
            if (readFileSync(path, 'utf8') === String(process.pid)) rmSync(path, { force: true });
        } catch {
            // already gone
        }
    });
}
