// The SQLite worker thread's entry point: one Engine, fed by the Fsm's messages in order.

import { parentPort, workerData } from 'node:worker_threads';
import { assert } from '../lib/assert.js';
import { Engine } from './engine.js';
import type { ReplyMessage, RequestMessage, WorkerOptions } from './protocol.js';

const port = parentPort;
assert(port !== null, 'fsm worker must run in a worker thread');
const engine = new Engine(workerData as WorkerOptions, (reply: ReplyMessage) => port.postMessage(reply));
// A message is one request or a batch of quiet ones (Fsm.postQuiet), handled in order.
port.on('message', (received: RequestMessage | RequestMessage[]) => {
    for (const message of Array.isArray(received) ? received : [received]) {
        engine.handle(message);
        if (message.op === 'shutdown') port.close();
    }
});
