// Goal: with TLS options the gateway speaks dqlite's protocol inside mutual TLS, as go-dqlite's
// cluster TLS expects: the real shell (`dqlite -c cert -k key`) works, and a client without the
// cluster certificate never reaches the protocol.
// Method: a Server with `tls` set to the test certificate of test/server/fixtures (server
// certificate, client certificate and CA at once); the shell runs as a child process; node:tls
// clients with and without a certificate probe the handshake.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Server } from '../../src/server/server.js';
import { SqliteBackend } from './helpers/sqlite-backend.js';
import { NODE_ID, Req } from './helpers/fixture.js';
import { VERSION, frame, body } from './helpers/raw-client.js';

// The compiled test runs from build-*/test/server; the fixtures stay in the source tree.
const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', '..', '..', 'test', 'server', 'fixtures');
const certPath = join(fixtures, 'cluster-cert.pem');
const keyPath = join(fixtures, 'cluster-key.pem');
const cert = readFileSync(certPath);
const key = readFileSync(keyPath);

let dir = '';
let backend: SqliteBackend;
let server: Server;

before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tqlite-tls-'));
    backend = new SqliteBackend({ dir, id: NODE_ID, address: '' });
    server = new Server({
        backend,
        address: '127.0.0.1:0',
        tls: { cert, key, ca: cert, requestCert: true, rejectUnauthorized: true },
    });
    await server.start();
    backend.setAddress(server.address);
});

after(async () => {
    await server.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
});

function shell(command: string): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        execFile('/usr/bin/dqlite', ['-s', server.address, '-c', certPath, '-k', keyPath, 'tls', command],
            { cwd: dir, timeout: 30_000 }, (_error, stdout, stderr) => resolve({ stdout, stderr }));
    });
}

test('the go-dqlite shell works over mutual TLS', async () => {
    assert.equal((await shell('CREATE TABLE t (x)')).stderr, '');
    assert.equal((await shell("INSERT INTO t VALUES ('over tls')")).stderr, '');
    assert.equal((await shell('SELECT x FROM t')).stdout, 'over tls\n');
    assert.equal((await shell('.cluster')).stdout, `2dc171858c3155be|${server.address}|voter\n`);
});

function tlsClient(withCert: boolean): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
        const socket = connect({
            host: '127.0.0.1',
            port: Number(server.address.split(':')[1]),
            ca: cert,
            servername: 'tqlite',
            ...(withCert ? { cert, key } : {}),
        }, () => resolve(socket));
        socket.once('error', reject);
    });
}

test('a client with the cluster certificate gets answers; one without it gets nothing', async () => {
    const good = await tlsClient(true);
    const reply = await new Promise<Buffer>((resolve) => {
        let data = Buffer.alloc(0);
        good.on('data', (chunk: Buffer) => {
            data = Buffer.concat([data, chunk]);
            if (data.length >= 8 && data.length >= 8 + data.readUInt32LE(0) * 8) resolve(data);
        });
        good.write(Buffer.concat([VERSION, frame(Req.leader, body((w) => void w.u64(0)))]));
    });
    assert.equal(reply[4], 1, 'SERVER');
    good.destroy();
    // Without a client certificate the TLS handshake fails (TLS 1.3 reports it on first read).
    const outcome = await tlsClient(false).then(
        (socket) => new Promise<string>((resolve) => {
            socket.on('error', () => resolve('closed'));
            socket.on('close', () => resolve('closed'));
            socket.on('data', () => resolve('answered'));
            socket.write(Buffer.concat([VERSION, frame(Req.leader, body((w) => void w.u64(0)))]));
        }),
        () => 'closed',
    );
    assert.equal(outcome, 'closed');
});
