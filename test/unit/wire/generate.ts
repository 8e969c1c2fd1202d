// Seeded generators of valid dqlite messages for the round-trip, splitting and fuzz tests.
// Every request and response kind is produced, with values at the edges (0, 2^31, 2^53, 2^63,
// negative rowids, NaN/±Inf, empty and multi-byte text, empty and odd-length blobs, more than
// 255 parameters with schema 1, rows of 1–40 columns).

import type { SeededRandom } from '../../../src/lib/random.js';
import { ValueType } from '../../../src/wire/index.js';
import type { Request, Response, WireValue } from '../../../src/wire/index.js';

const EDGE_INTEGERS = [0n, 1n, -1n, 2n ** 31n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)];
const EDGE_FLOATS = [0, -0, NaN, 1.5, -2.25, Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity];
const TEXTS = ['', 'a', '1234567', '12345678', 'héllo wörld', '日本語テキスト', 'x'.repeat(40), 'SELECT 1'];

export function integer(random: SeededRandom): bigint {
    if (random.chance(0.5)) return random.pick(EDGE_INTEGERS);
    return BigInt(random.range(-1_000_000, 1_000_000));
}

export function u64(random: SeededRandom): bigint {
    if (random.chance(0.3)) return random.pick([0n, 1n, 2n ** 64n - 1n, 0x2dc171858c3155ben]);
    return BigInt(random.next32()) * 0x100000000n + BigInt(random.next32());
}

export function text(random: SeededRandom): string {
    if (random.chance(0.7)) return random.pick(TEXTS);
    let out = '';
    const length = random.int(20);
    for (let i = 0; i < length; i++) out += String.fromCharCode(1 + random.int(0x7e));
    return out;
}

export function blob(random: SeededRandom): Buffer {
    const bytes = Buffer.alloc(random.int(20));
    for (let i = 0; i < bytes.length; i++) bytes[i] = random.int(256);
    return bytes;
}

export function value(random: SeededRandom, forParams = false): WireValue {
    const choices = forParams ? 7 : 8;
    switch (random.int(choices)) {
        case 0: return { type: ValueType.integer, value: integer(random) };
        case 1: return { type: ValueType.float, value: random.chance(0.5) ? random.pick(EDGE_FLOATS) : random.float() };
        case 2: return { type: ValueType.text, value: text(random) };
        case 3: return { type: ValueType.blob, value: blob(random) };
        case 4: return { type: ValueType.null, value: null };
        case 5: return { type: ValueType.iso8601, value: random.pick(['', '2024-01-02 03:04:05', '2024-01-02']) };
        case 6: return { type: ValueType.boolean, value: random.chance(0.5) };
        default: return { type: ValueType.unixTime, value: integer(random) };
    }
}

function params(random: SeededRandom, schema: number): WireValue[] {
    const count = schema === 1 && random.chance(0.2) ? 256 + random.int(50) : random.int(schema === 0 ? 18 : 10);
    return Array.from({ length: count }, () => value(random, true));
}

/** A valid request and the schema byte it should be sent with. */
export function request(random: SeededRandom): { request: Request; schema: number } {
    const schema = random.int(2);
    const db32 = random.chance(0.8) ? 0 : random.next32();
    const stmt = random.chance(0.5) ? random.int(10) : random.next32();
    const candidates: (() => Request)[] = [
        () => ({ kind: 'leader' }),
        () => ({ kind: 'client', id: u64(random) }),
        () => ({ kind: 'heartbeat', timestamp: u64(random) }),
        () => ({ kind: 'open', name: text(random), flags: u64(random), vfs: random.pick(['volatile', 'test']) }),
        () => ({ kind: 'prepare', db: u64(random), sql: text(random) }),
        () => ({ kind: 'exec', db: db32, stmt, params: params(random, schema) }),
        () => ({ kind: 'query', db: db32, stmt, params: params(random, schema) }),
        () => ({ kind: 'finalize', db: db32, stmt }),
        () => ({ kind: 'execSql', db: u64(random), sql: text(random), params: params(random, schema) }),
        () => ({ kind: 'querySql', db: u64(random), sql: text(random), params: params(random, schema) }),
        () => ({ kind: 'interrupt', db: u64(random) }),
        () => ({ kind: 'connect', id: u64(random), address: text(random) }),
        () => ({ kind: 'add', id: u64(random), address: text(random) }),
        () => (random.chance(0.5)
            ? { kind: 'assign', id: u64(random), role: random.int(3) }
            : { kind: 'assign', id: u64(random) }),
        () => ({ kind: 'remove', id: u64(random) }),
        () => ({ kind: 'dump', name: text(random) }),
        () => ({ kind: 'cluster', format: BigInt(random.int(2)) }),
        () => ({ kind: 'transfer', id: u64(random) }),
        () => ({ kind: 'describe', format: 0n }),
        () => ({ kind: 'weight', weight: u64(random) }),
    ];
    return { request: random.pick(candidates)(), schema };
}

/** Every request kind once (for tests that must cover all of them). */
export const REQUEST_KIND_COUNT = 20;

function rowsResponse(random: SeededRandom): Response {
    const columnCount = random.chance(0.1) ? 0 : 1 + random.int(random.chance(0.2) ? 40 : 6);
    const columns = Array.from({ length: columnCount }, () => text(random));
    const rowCount = columnCount === 0 ? 0 : random.int(8);
    const rows = Array.from({ length: rowCount }, () => Array.from({ length: columnCount }, () => value(random)));
    return { kind: 'rows', columns, rows, done: random.chance(0.5) };
}

/** A valid response and the decode options that read it back. */
export function response(random: SeededRandom): { response: Response; legacy: boolean; clusterFormat: 0 | 1 } {
    const clusterFormat = random.chance(0.5) ? 1 : 0;
    const serverCount = random.int(5);
    const candidates: (() => Response)[] = [
        () => ({ kind: 'failure', code: random.pick([0, 1, 5, 12, 1555, 10250, 10506]), message: text(random) }),
        () => ({ kind: 'server', id: u64(random), address: text(random) }),
        () => ({ kind: 'serverLegacy', address: text(random) }),
        () => ({ kind: 'welcome', heartbeatTimeoutMs: random.pick([0, 15000, 2 ** 53 - 1]) }),
        () => ({
            kind: 'servers',
            servers: Array.from({ length: serverCount }, () => (clusterFormat === 1
                ? { id: u64(random), address: text(random), role: random.int(3) }
                : { id: u64(random), address: text(random) })),
        }),
        () => ({ kind: 'db', id: random.chance(0.8) ? 0 : random.next32() }),
        () => (random.chance(0.5)
            ? { kind: 'stmt', db: 0, id: random.int(100), params: random.int(300) }
            : { kind: 'stmt', db: 0, id: random.int(100), params: random.int(300), tailOffset: random.int(1000) }),
        () => ({ kind: 'result', lastInsertId: integer(random), rowsAffected: u64(random) }),
        () => rowsResponse(random),
        () => ({ kind: 'empty' }),
        () => ({
            kind: 'files',
            files: Array.from({ length: random.int(3) }, () => ({ name: text(random), data: blob(random) })),
        }),
        () => ({ kind: 'metadata', failureDomain: u64(random), weight: u64(random) }),
    ];
    const chosen = random.pick(candidates)();
    return { response: chosen, legacy: chosen.kind === 'serverLegacy', clusterFormat };
}
