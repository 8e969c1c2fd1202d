// A gateway on 127.0.0.1:0 with the better-sqlite3 test backend in a temporary directory,
// plus request-body builders for the requests the tests send (byte builders, STYLE.md §7.6).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ByteWriter } from '../../../src/lib/bytes.js';
import { Server } from '../../../src/server/server.js';
import type { ServerOptions } from '../../../src/server/server.js';
import { SqliteBackend } from './sqlite-backend.js';
import { RawClient, body } from './raw-client.js';
import type { Message } from './raw-client.js';

export const NODE_ID = 0x2dc171858c3155ben;

export const Req = {
    leader: 0, client: 1, heartbeat: 2, open: 3, prepare: 4, exec: 5, query: 6, finalize: 7, execSql: 8,
    querySql: 9, interrupt: 10, connect: 11, add: 12, assign: 13, remove: 14, dump: 15, cluster: 16,
    transfer: 17, describe: 18, weight: 19,
} as const;

export const Res = {
    failure: 0, server: 1, welcome: 2, servers: 3, db: 4, stmt: 5, result: 6, rows: 7, empty: 8, files: 9,
    metadata: 10,
} as const;

export interface Fixture {
    readonly dir: string;
    readonly backend: SqliteBackend;
    readonly server: Server;
    close(): Promise<void>;
}

export type FixtureOptions = Partial<Omit<ServerOptions, 'backend' | 'address'>>;

export async function startFixture(options: FixtureOptions = {}): Promise<Fixture> {
    const dir = mkdtempSync(join(tmpdir(), 'tqlite-gw-'));
    const backend = new SqliteBackend({ dir, id: NODE_ID, address: '' });
    const server = new Server({ ...options, backend, address: '127.0.0.1:0' });
    await server.start();
    backend.setAddress(server.address);
    return {
        dir,
        backend,
        server,
        async close(): Promise<void> {
            await server.close();
            await backend.close();
            rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** A parameter for EXEC/QUERY/_SQL bodies: wire type code and a writer for its value. */
export interface Param {
    readonly type: number;
    readonly write: (w: ByteWriter) => void;
}

export const P = {
    int: (v: bigint): Param => ({ type: 1, write: (w) => void w.i64(v) }),
    float: (v: number): Param => ({ type: 2, write: (w) => void w.f64(v) }),
    text: (v: string): Param => ({ type: 3, write: (w) => void w.text(v) }),
    blob: (v: Uint8Array): Param => ({ type: 4, write: (w) => void w.blob(v) }),
    null: (): Param => ({ type: 5, write: (w) => void w.u64(0) }),
    unix: (v: bigint): Param => ({ type: 9, write: (w) => void w.i64(v) }),
    iso: (v: string): Param => ({ type: 10, write: (w) => void w.text(v) }),
    bool: (v: boolean): Param => ({ type: 11, write: (w) => void w.u64(v ? 1 : 0) }),
};

/** Writes a parameter tuple (§4.2), schema 0 (u8 count) or 1 (u32 count). */
export function writeParams(w: ByteWriter, params: readonly Param[], schema = 0): void {
    if (params.length === 0) return;
    if (schema === 0) w.u8(params.length);
    else w.u32(params.length);
    for (const p of params) w.u8(p.type);
    w.pad8();
    for (const p of params) p.write(w);
}

export const B = {
    u64: (v: bigint | number): Buffer => body((w) => void w.u64(v)),
    open: (name: string): Buffer => body((w) => void w.text(name).u64(0).text('volatile')),
    prepare: (sql: string): Buffer => body((w) => void w.u64(0).text(sql)),
    stmt: (stmt: number, params: readonly Param[] = [], schema = 0): Buffer =>
        body((w) => {
            w.u32(0).u32(stmt);
            writeParams(w, params, schema);
        }),
    sql: (sql: string, params: readonly Param[] = [], schema = 0): Buffer =>
        body((w) => {
            w.u64(0).text(sql);
            writeParams(w, params, schema);
        }),
    text: (v: string): Buffer => body((w) => void w.text(v)),
    idAddress: (id: bigint, address: string): Buffer => body((w) => void w.u64(id).text(address)),
};

/** A client past LEADER, CLIENT and OPEN of `db`. */
export async function openClient(fixture: Fixture, db = 'test'): Promise<RawClient> {
    const client = await RawClient.open(fixture.server.address);
    await client.request(Req.client, B.u64(0));
    const reply = await client.request(Req.open, B.open(db));
    if (reply.type !== Res.db) {
        const detail = reply.type === Res.failure ? ` ${reply.body.readBigUInt64LE(0)}` : '';
        throw new Error(`OPEN failed with type ${reply.type}${detail}`);
    }
    return client;
}

export type { Message };
