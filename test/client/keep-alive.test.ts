// Goal: a call in progress keeps the process alive until it settles, while an idle client does
// not. Before, every client timer was unref'd: a call waiting between two dial attempts (no
// socket open, only a back-off timer) let Node exit with code 0, the call never settled, and
// `tqlite shell` against a node it cannot reach printed nothing and "succeeded".
// Method: child processes that import the compiled client: one calls a server that refuses every
// connection and must print the call's TimeoutError and exit with the code it chose; one only
// creates a client (and closes nothing) and must exit at once by itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../integration/helpers.js';

const CLIENT = fileURLToPath(new URL('../../src/client/index.js', import.meta.url));

function runScript(source: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        const args = ['--input-type=module', '-e', source];
        execFile(process.execPath, args, { timeout: 20_000 }, (error, stdout, stderr) => {
            const code = error === null ? 0 : (typeof error.code === 'number' ? error.code : null);
            resolve({ code, stdout, stderr });
        });
    });
}

test('a call to an unreachable cluster settles with TimeoutError; the process waits for it', async () => {
    const port = await freePort(); // nothing listens: every dial is refused at once
    const result = await runScript(`
        import { connect } from ${JSON.stringify(CLIENT)};
        try {
            const db = await connect({ servers: ['127.0.0.1:${port}'], database: 'app', timeoutMs: 800 });
            await db.exec('CREATE TABLE t (x)');
            console.log('settled: ok');
        } catch (error) {
            console.log('settled: ' + error.code);
            process.exitCode = 7;
        }
    `);
    assert.equal(result.stdout.trim(), 'settled: ERR_TIMEOUT', result.stderr);
    assert.equal(result.code, 7);
});

test('an idle client (no call in progress) does not keep the process alive', async () => {
    const port = await freePort();
    const result = await runScript(`
        import { createAdminClient } from ${JSON.stringify(CLIENT)};
        const admin = createAdminClient({ servers: ['127.0.0.1:${port}'], timeoutMs: 60000 });
        console.log(admin ? 'created' : 'none');
    `);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'created');
});
