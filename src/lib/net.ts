// A free TCP port on 127.0.0.1, for the demo, the benchmarks and the tests. The port is free
// when this returns; another process may still take it before the caller binds it.

import { createServer } from 'node:net';

export function freeLoopbackPort(): Promise<number> {
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
