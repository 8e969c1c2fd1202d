// The go-dqlite shell as a test driver: run one command per process, the shared script of
// issue 5 (every value type, a 10,000-row result, the dot commands), and output normalisation
// for comparing runs against different servers.

import { execFile } from 'node:child_process';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { freeLoopbackPort as freePort } from '../../../src/lib/net.js';
export { freePort };

export const SHELL = '/usr/bin/dqlite';
export const DEMO = '/usr/bin/dqlite-demo';

export interface Run {
    stdout: string;
    stderr: string;
    code: number;
}

export function shell(address: string, db: string, command: string, cwd: string): Promise<Run> {
    return new Promise((resolve) => {
        execFile(SHELL, ['-s', address, db, command], { cwd, timeout: 60_000, maxBuffer: 64 << 20 },
            (error, stdout, stderr) => {
                const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
                resolve({ stdout, stderr, code });
            });
    });
}


/** Resolves once something accepts TCP connections on the port (polling with connect). */
export async function waitForPort(port: number, deadlineMs: number): Promise<void> {
    const end = Date.now() + deadlineMs;
    for (;;) {
        const ok = await new Promise<boolean>((resolve) => {
            const socket = connect(port, '127.0.0.1');
            socket.once('connect', () => {
                socket.destroy();
                resolve(true);
            });
            socket.once('error', () => resolve(false));
        });
        if (ok) return;
        if (Date.now() > end) throw new Error(`nothing listens on ${port}`);
        await new Promise((resolve) => setImmediate(resolve));
    }
}

const CREATE = 'CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB, n, d DATETIME, bo BOOLEAN)';
const ROWS = [
    "INSERT INTO t VALUES (-1, 1.5, 'abc', x'010203', NULL, '2024-01-02 03:04:05', 1)",
    "INSERT INTO t VALUES (9223372036854775807, -0.25, 'héllo wörld', x'', 42, 1700000000, 0)",
    "INSERT INTO t VALUES (-9223372036854775808, 1e300, '', x'ff00', 2.5, NULL, 1)",
    "INSERT INTO t VALUES (0, 0.0, 'x|y', NULL, 'text', '2024-01-02T03:04:05Z', 0)",
];

/** The script: [label, command]. Output is normalised before comparison. */
export function script(address: string, other: string): [string, string][] {
    return [
        ['create', CREATE],
        ...ROWS.map((sql, i): [string, string] => [`insert ${i}`, sql]),
        ['select all', 'SELECT * FROM t ORDER BY rowid'],
        ['expressions', "SELECT 1, 1.0, 'x' || 'y', NULL, x'41', 2 > 1"],
        ['create big', 'CREATE TABLE big (x INTEGER PRIMARY KEY, s TEXT)'],
        ['fill big', "INSERT INTO big (x, s) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            + "WHERE x < 10000) SELECT x, printf('row-%05d', x) FROM c"],
        ['select big', 'SELECT x, s FROM big ORDER BY x'],
        ['count', 'SELECT count(*), sum(x) FROM big'],
        ['syntax error', 'SELEC bogus'],
        ['constraint', 'INSERT INTO big (x, s) VALUES (1, NULL)'],
        ['cluster', '.cluster'],
        ['leader', '.leader'],
        ['describe', `.describe ${address}`],
        ['weight', `.weight ${address} 7`],
        ['describe after weight', `.describe ${address}`],
        ['dump', `.dump ${address} shell`],
        ['remove unknown', `.remove ${other}`],
    ];
}

export function normalise(text: string, address: string, ids: readonly string[]): string {
    let out = text.split(address).join('<ADDR>');
    for (const id of ids) out = out.split(id).join('<ID>');
    // The usage text after an error is printed by cobra; keep only the error line.
    return out.replace(/\nUsage:[\s\S]*$/, '\n');
}

export async function runScript(address: string, cwd: string): Promise<Map<string, Run>> {
    const results = new Map<string, Run>();
    for (const [label, command] of script(address, '127.0.0.1:1')) {
        results.set(label, await shell(address, 'shell', command, cwd));
    }
    return results;
}

