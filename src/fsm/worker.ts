// The SQLite worker thread's entry point: one Engine, fed by the Fsm's messages in order.
//
// A message from the Fsm is one request or the batch of requests made in one of its loop
// turns; the replies to a batch leave as one message too (one wake-up of the main thread and
// one structured clone instead of one per request). A reply therefore waits for the requests
// after it in its batch — but never more than REPLY_HOLD_MS plus one request: before each
// request, replies held longer than that are posted. Replies made outside a batch (a writer
// that waited in a database's queue) leave at the end of their task.

import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { assert } from '../lib/assert.js';
import { Engine } from './engine.js';
import type { ReplyMessage, RequestMessage, WorkerOptions } from './protocol.js';

const REPLY_HOLD_MS = 0.5;

const port = parentPort;
assert(port !== null, 'fsm worker must run in a worker thread');
let outbox: ReplyMessage[] = [];
let heldSince = 0;
const flush = (): void => {
    if (outbox.length === 0) return;
    const batch = outbox;
    outbox = [];
    port.postMessage(batch.length === 1 ? batch[0] : batch);
};
const engine = new Engine(workerData as WorkerOptions, (reply: ReplyMessage) => {
    if (outbox.push(reply) > 1) return;
    heldSince = performance.now();
    queueMicrotask(flush);
});
port.on('message', (received: RequestMessage | RequestMessage[]) => {
    for (const message of Array.isArray(received) ? received : [received]) {
        if (outbox.length > 0 && performance.now() - heldSince >= REPLY_HOLD_MS) flush();
        engine.handle(message);
        if (message.op === 'shutdown') {
            flush(); // its reply: nothing leaves once the port is closed
            port.close();
        }
    }
});
