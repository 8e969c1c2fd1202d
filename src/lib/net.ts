// A free TCP port on 127.0.0.1, for the demo, the benchmarks and the tests. The port is free
// when this returns; another process may still take it before the caller binds it.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports this process handed out (never handed out twice: a restarted node keeps its port). */
const handedOut = new Set<number>();
const LOW_PORT = 10_000;

/** The kernel's ephemeral range start (Linux), or undefined when it cannot be read. */
function ephemeralLow(): number | undefined {
    try {
        const low = Number.parseInt(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'), 10);
        return Number.isInteger(low) && low > LOW_PORT + 1_000 ? low : undefined;
    } catch {
        return undefined;
    }
}

function canListen(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const server = createServer();
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
}

/** A port the kernel picks (listen on port 0), inside the ephemeral range. */
function kernelPort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const address = server.address();
            const port = typeof address === 'object' && address !== null ? address.port : 0;
            server.close(() => resolve(port));
        });
    });
}

/**
 * A TCP port on 127.0.0.1, free now, for a server started (and maybe restarted) later.
 * Chosen at random BELOW the kernel's ephemeral range: a port from listen(0) lies inside it,
 * where any outgoing connection on the machine (the cluster's own peers and clients, other
 * test files, other users) may take it as its local port before the server binds it or while
 * a restarted node is down: EADDRINUSE (seen in lifecycle.slow and churn). Outgoing
 * connections never get a port below the range. Falls back to listen(0) off Linux.
 */
export async function freeLoopbackPort(): Promise<number> {
    const low = ephemeralLow();
    if (low === undefined) return kernelPort();
    for (let attempt = 0; attempt < 200; attempt++) {
        const port = LOW_PORT + Math.floor(Math.random() * (low - LOW_PORT));
        if (handedOut.has(port) || !(await canListen(port))) continue;
        handedOut.add(port);
        return port;
    }
    return kernelPort();
}
