// The floor under tqlite's per-request cost on this machine: what one loopback TCP round trip
// costs a Node.js process, and what a hop to a worker thread and back adds. A tqlite read is
// (at least) one client round trip, one ReadIndex round to the followers and one SQLite worker
// hop on the leader; dqlite serves it in one C event loop. Figures behind BENCHMARKS.md's
// "what limits the misses".
//
//   npx tsc -p . --outDir build-bench --tsBuildInfoFile build-bench/.tsbuildinfo
//   node build-bench/bench/wake-floor.js [round-trips]
//
// For each mode a server child process answers a one-byte message from a client child process,
// one at a time: `echo` answers at once; `worker` first sends the request to a worker thread
// and answers when the worker replies (postMessage both ways, as src/fsm does). Prints the
// round-trip time and the CPU time (user + system) per round trip of the client and of the
// server (all its threads). Modes alternate for three rounds; compare within a run only.

import { fork, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { freeLoopbackPort } from '../src/lib/net.js';

const SELF = fileURLToPath(import.meta.url);
const ROUND_TRIPS = Number(process.argv[2] ?? 20_000);
const ROUNDS = 3;

function cpuMicros(): number {
    const u = process.cpuUsage();
    return u.user + u.system;
}

function serve(port: number, mode: string): void {
    let worker: Worker | undefined;
    const waiting: (() => void)[] = [];
    if (mode === 'worker') {
        worker = new Worker('require("node:worker_threads").parentPort.on("message", (m) => '
            + 'require("node:worker_threads").parentPort.postMessage(m));', { eval: true });
        worker.on('message', () => waiting.shift()?.());
    }
    const server = createServer((socket) => {
        socket.setNoDelay(true);
        socket.on('data', (data) => {
            if (worker === undefined) {
                socket.write(data);
                return;
            }
            waiting.push(() => socket.write(data));
            worker.postMessage(1);
        });
    });
    server.listen(port, '127.0.0.1', () => process.send?.({ listening: true, cpu: cpuMicros() }));
    process.on('message', (m: { stop?: boolean }) => {
        if (m.stop !== true) return;
        process.send?.({ cpu: cpuMicros() }, () => process.exit(0));
    });
}

function client(port: number, count: number): void {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    let done = 0;
    let start = 0;
    let cpu0 = 0;
    socket.on('connect', () => {
        start = performance.now();
        cpu0 = cpuMicros();
        socket.write('x');
    });
    socket.on('data', () => {
        if (++done < count) {
            socket.write('x');
            return;
        }
        const elapsedMs = performance.now() - start;
        const result = { rttUs: (elapsedMs * 1000) / count, cpuUs: (cpuMicros() - cpu0) / count };
        process.send?.(result, () => process.exit(0));
    });
}

function once<T>(child: ChildProcess): Promise<T> {
    return new Promise((resolve, reject) => {
        child.once('message', (m) => resolve(m as T));
        child.once('error', reject);
    });
}

async function measure(mode: string): Promise<{ rttUs: number; clientCpuUs: number; serverCpuUs: number }> {
    const port = await freeLoopbackPort();
    const server = fork(SELF, ['serve', String(port), mode]);
    try {
        const ready = await once<{ cpu: number }>(server);
        const c = fork(SELF, ['client', String(port), String(ROUND_TRIPS)]);
        const result = await once<{ rttUs: number; cpuUs: number }>(c);
        const stopped = once<{ cpu: number }>(server);
        server.send({ stop: true });
        const end = await stopped;
        // The server's CPU includes accepting the connection and its share of start-up after
        // `listening`: small against ROUND_TRIPS round trips.
        return { rttUs: result.rttUs, clientCpuUs: result.cpuUs, serverCpuUs: (end.cpu - ready.cpu) / ROUND_TRIPS };
    } finally {
        if (server.exitCode === null) server.kill();
    }
}

async function main(): Promise<void> {
    const rows: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
        for (const mode of round % 2 === 1 ? ['echo', 'worker'] : ['worker', 'echo']) {
            const r = await measure(mode);
            rows.push(`| ${round} | ${mode} | ${r.rttUs.toFixed(1)} | ${r.clientCpuUs.toFixed(1)} | `
                + `${r.serverCpuUs.toFixed(1)} |`);
        }
    }
    process.stdout.write(`${ROUND_TRIPS} round trips per measurement, one at a time, loopback TCP\n\n`
        + '| round | server | round trip µs | client CPU µs per round trip | server CPU µs per round trip |\n'
        + '|---:|---|---:|---:|---:|\n' + rows.join('\n') + '\n');
}

const [role, port, arg] = process.argv.slice(2);
if (role === 'serve') serve(Number(port), arg as string);
else if (role === 'client') client(Number(port), Number(arg));
else await main();
