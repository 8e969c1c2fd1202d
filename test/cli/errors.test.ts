// Goal: the installed command (bin/tqlite.js, what `npx tqlite` runs) reports a bad flag or a
// refused start as one line on stderr with an exit code, never as a Node.js stack trace (before
// this test, bin/tqlite.js let every error escape: `tqlite node --help` printed a TypeError with
// its stack and exit code 1); a command's --help prints its usage.
// Method: child processes of bin/tqlite.js (which loads the compiled CLI from build/); nothing
// listens or is written: the failures happen while parsing flags.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/tqlite.js', import.meta.url));

function tqlite(args: string[]): Promise<{ code: number; stderr: string }> {
    return new Promise((resolve) => {
        execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (error, _stdout, stderr) => {
            resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stderr });
        });
    });
}

function assertNoStack(stderr: string): void {
    assert.doesNotMatch(stderr, /^\s+at /m, stderr);
    assert.doesNotMatch(stderr, /node:internal/, stderr);
}

test('an unknown flag: one error line, the usage, exit code 2', async () => {
    const cases = [['node', '--bogus'], ['bench', '--bogus'], ['cluster', '-s', '127.0.0.1:1', '--nope', 'status']];
    for (const args of cases) {
        const { code, stderr } = await tqlite(args);
        assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
        const first = stderr.split('\n')[0] as string;
        assert.match(first, /^tqlite: Unknown option '--\w+'.* \(ERR_PARSE_ARGS_UNKNOWN_OPTION\)$/);
        assert.match(stderr, /^usage:$/m);
        assertNoStack(stderr);
    }
});

test('a refused configuration: the reason on one line, exit code 1', async () => {
    const { code, stderr } = await tqlite(['node', '--address', '127.0.0.1:1', '--data', '/nonexistent-tqlite',
        '--voters', 'abc']);
    assert.equal(code, 1, stderr);
    assert.equal(stderr, 'tqlite: --voters must be a non-negative integer (ERR_CONFIG)\n');
});

test('no command: the usage, exit code 2; --help: exit code 0', async () => {
    const none = await tqlite(['frobnicate']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^usage:\n {2}tqlite node /);
    assert.equal((await tqlite(['--help'])).code, 0);
});

test('a command with --help or -h: its usage on stdout, exit code 0, nothing started', async () => {
    for (const [command, start] of [['node', 'tqlite node --address'], ['shell', 'tqlite shell -s'],
        ['cluster', 'tqlite cluster -s'], ['bench', 'tqlite bench -s'], ['demo', 'tqlite demo']] as const) {
        for (const flag of ['--help', '-h']) {
            const result = await new Promise<{ code: number; stdout: string }>((resolve) => {
                execFile(process.execPath, [BIN, command, flag], { timeout: 20_000 }, (error, stdout) => {
                    resolve({ code: error === null ? 0 : -1, stdout });
                });
            });
            assert.equal(result.code, 0, `${command} ${flag}`);
            assert.ok(result.stdout.startsWith(`usage:\n  ${start}`), `${command} ${flag}: ${result.stdout}`);
        }
    }
});
