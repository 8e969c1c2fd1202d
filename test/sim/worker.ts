// A simulator worker thread: loads the core once, then runs the seeds the pool sends it, one at
// a time, and posts each result back. It owns nothing but its core module.

import { parentPort, workerData } from 'node:worker_threads';
import { loadCoreFactory } from './core-adapter.js';
import { simulate } from './simulation.js';

interface WorkerInput {
    readonly coreUrl: string;
}

const port = parentPort;
if (port === null) throw new Error('worker.js must run in a worker thread');
const input = workerData as WorkerInput;
const factory = await loadCoreFactory(input.coreUrl);
port.on('message', (message: { seed: number }) => {
    port.postMessage(simulate(message.seed, factory));
});
port.postMessage({ ready: true });
