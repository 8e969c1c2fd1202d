// Child process for kill.slow.test.ts: a single-node "cluster". Each proposed entry is
// appended to a log file (u32 length, bytes) and fsynced — that is its raft commit — then
// applied. Writes run forever on three databases; each acknowledged insert prints "ack <n>".

import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { Fsm } from '../../src/fsm/fsm.js';

const [dir, logPath] = process.argv.slice(2) as [string, string];
const logFd = openSync(logPath, 'a');
let index = 0;
let chain = Promise.resolve();
const fsm: Fsm = new Fsm({
    dir,
    durableEveryEntries: 7,
    checkpointFramesMin: 40,
    propose: (w) => {
        const head = Buffer.alloc(4);
        head.writeUInt32LE(w.entry.length);
        writeSync(logFd, head);
        writeSync(logFd, w.entry);
        fsyncSync(logFd);
        const i = ++index;
        chain = chain.then(() => fsm.apply(i, w.entry));
    },
});

async function main(): Promise<void> {
    const { durableIndex } = await fsm.start();
    if (durableIndex !== 0) throw new Error('the child starts from an empty directory');
    const sessions = await Promise.all(['a', 'b', 'c'].map((name) => fsm.open(name)));
    for (const s of sessions) await s.execSql('CREATE TABLE t(n INTEGER PRIMARY KEY, v BLOB)', []);
    let n = 0;
    for (;;) {
        n++;
        const s = sessions[n % 3]!;
        await s.execSql(`INSERT INTO t(n, v) VALUES (${n}, randomblob(abs(random()) % 9000))`, []);
        process.stdout.write(`ack ${n}\n`);
        if (n % 17 === 0) await s.execSql('DELETE FROM t WHERE n % 4 = 0 AND n < ?; VACUUM', [BigInt(n - 20)]);
    }
}

main().catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    closeSync(logFd);
    process.exit(1);
});
