// Goal: SIGKILL of a whole process running the state machine, at a random moment of a write
// workload (applies, checkpoints, VACUUMs, durable-index updates), followed by a restart that
// replays the committed log after the durable index: the databases pass integrity_check, equal
// a node that applied the same log from scratch, and hold every acknowledged write.
// Method: kill-child.js commits by fsyncing each entry to a log file before applying it; the
// parent kills it after a seeded number of acknowledgements (TQLITE_SEED replays), several
// rounds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Deferred } from '../../src/lib/deferred.js';
import { SeededRandom } from '../../src/lib/random.js';
import { Fsm } from '../../src/fsm/fsm.js';
import { replay, rows, tempDir } from './helpers.js';

const seed = Number(process.env['TQLITE_SEED'] ?? Date.now() % 1_000_000);
const child = join(fileURLToPath(new URL('.', import.meta.url)), 'kill-child.js');
const noPropose = (): void => assert.fail('no proposals here');

function readLog(path: string): Uint8Array[] {
    const bytes = readFileSync(path);
    const out: Uint8Array[] = [];
    let at = 0;
    while (at + 4 <= bytes.length) {
        const n = bytes.readUInt32LE(at);
        if (at + 4 + n > bytes.length) break;
        out.push(bytes.subarray(at + 4, at + 4 + n));
        at += 4 + n;
    }
    return out;
}

async function runUntilKilled(dir: string, logPath: string, acks: number): Promise<number> {
    const proc = spawn(process.execPath, [child, dir, logPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Deferred<void>();
    proc.on('exit', () => exited.resolve());
    let last = 0;
    let buffered = '';
    proc.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) {
            last = Number(line.split(' ')[1]);
            if (last >= acks) proc.kill('SIGKILL');
        }
    });
    await exited.promise;
    return last;
}

test(`SIGKILL during writes, restart, replay: identical and nothing acknowledged lost (seed ${seed})`, async () => {
    console.log(`kill seed ${seed} (replay: TQLITE_SEED=${seed})`);
    const random = new SeededRandom(seed);
    for (let round = 0; round < 3; round++) {
        const node = tempDir('kill-n');
        const ref = tempDir('kill-r');
        const logPath = join(node.path, 'log');
        try {
            const acked = await runUntilKilled(join(node.path, 'db'), logPath, 20 + random.int(120));
            const log = readLog(logPath);
            const restarted = new Fsm({ dir: join(node.path, 'db'), propose: noPropose });
            const reference = new Fsm({ dir: ref.path, propose: noPropose });
            try {
                const { durableIndex } = await restarted.start();
                await reference.start();
                await replay(restarted, log, durableIndex + 1, log.length);
                await replay(reference, log, 1, log.length);
                const got = await restarted.inspect();
                for (const d of got.databases) assert.equal(d.integrity, 'ok', d.database);
                assert.deepEqual(got.databases, (await reference.inspect()).databases);
                const name = ['a', 'b', 'c'][acked % 3]!;
                assert.deepEqual(await rows(restarted, name, `SELECT count(*) FROM t WHERE n = ${acked}`), [[1n]]);
                console.log(`round ${round}: killed after ack ${acked}, log ${log.length} entries, ` +
                    `durable index ${durableIndex}`);
            } finally {
                await restarted.close();
                await reference.close();
            }
        } finally {
            node.remove();
            ref.remove();
        }
    }
});
