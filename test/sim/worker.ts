// A simulator worker thread: loads the core once, then runs the seeds the pool sends it, one at
// a time, and posts each result back. It owns nothing but its core module.

import { parentPort, workerData } from 'node:worker_threads';
import { loadCoreFactory } from './core-adapter.js';
import { simulate } from './simulation.js';

interface WorkerInput {
    readonly coreUrl: string;
}

// Batch runs build many errors the simulation expects (NotLeaderError for every proposal that
// reaches a follower): without stack capture they cost a few percent less. A failing seed's
// stack is printed by its single-seed replay (--seed X), which runs in the main thread.
Error.stackTraceLimit = 0;

const port = parentPort;
if (port === null) throw new Error('worker.js must run in a worker thread');
const input = workerData as WorkerInput;
const factory = await loadCoreFactory(input.coreUrl);
port.on('message', (message: { seed: number }) => {
    void simulate(message.seed, factory).then((result) => port.postMessage(result));
});
port.postMessage({ ready: true });
