// A plain byte forwarder, used by the dqlite target (dqlite.ts) inside each node's network
// namespace: `node forward.js LISTEN=TARGET ...` where each side is `tcp:HOST:PORT` or
// `unix:/path`. Every connection accepted on LISTEN is piped to a new connection to TARGET,
// both ways, until either side closes. Prints "ready" on stdout once every listener is bound;
// runs until killed (its owner, the harness, SIGKILLs it by pid). No faults here: they happen in
// the harness's LinkProxies.

import { connect, createServer, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type Side = { readonly path: string } | { readonly host: string; readonly port: number };

export function parseSide(text: string): Side {
    if (text.startsWith('unix:')) return { path: text.slice('unix:'.length) };
    if (text.startsWith('tcp:')) {
        const rest = text.slice('tcp:'.length);
        const colon = rest.lastIndexOf(':');
        return { host: rest.slice(0, colon), port: Number(rest.slice(colon + 1)) };
    }
    throw new Error(`bad side ${text}`);
}

/** Pipes `socket` to a new connection to `target`; destroys both when either closes. */
export function pipeTo(socket: Socket, target: Side): void {
    const upstream = connect(target as never);
    const teardown = (): void => {
        socket.destroy();
        upstream.destroy();
    };
    socket.on('error', teardown);
    socket.on('close', teardown);
    upstream.on('error', teardown);
    upstream.on('close', teardown);
    socket.pipe(upstream);
    upstream.pipe(socket);
}

async function main(args: string[]): Promise<void> {
    for (const arg of args) {
        const [listenText, targetText] = arg.split('=');
        const listen = parseSide(listenText ?? '');
        const target = parseSide(targetText ?? '');
        if ('path' in listen) rmSync(listen.path, { force: true });
        const server = createServer((socket) => pipeTo(socket, target));
        await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(listen as never, () => resolve());
        });
    }
    process.stdout.write('ready\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
    await main(process.argv.slice(2));
}
