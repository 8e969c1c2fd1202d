// Runs many seeds on a small pool of worker threads (one seed in flight per worker; the next
// seed goes to whichever worker finishes first). A worker that dies is reported as a crash of
// the seed it was running and replaced. The pool is owned by one runSeeds() call and closed
// (every worker terminated) before it returns.

import { Worker } from 'node:worker_threads';
import { defaultCoreUrl } from './core-adapter.js';
import type { SimResult } from './simulation.js';
import { emptyCounters } from './types.js';

export interface RunOptions {
    readonly workers: number;
    readonly coreUrl?: string;
    /** The worker script (default: this build's worker.js; the mutation script runs a patched copy). */
    readonly workerUrl?: URL;
    /** Stop dispatching new seeds after the first failure. */
    readonly stopOnFailure?: boolean;
    readonly onResult?: (result: SimResult, done: number) => void;
}

export async function runSeeds(seeds: readonly number[], options: RunOptions): Promise<SimResult[]> {
    const coreUrl = options.coreUrl ?? defaultCoreUrl();
    const workerUrl = options.workerUrl ?? new URL('./worker.js', import.meta.url);
    const results: SimResult[] = [];
    let next = 0;
    let stopped = false;
    const workerCount = Math.max(1, Math.min(options.workers, seeds.length));
    const runOne = (): Promise<void> => new Promise((resolve) => {
        let current: number | undefined;
        let settled = false;
        let isReady = false;
        const worker = new Worker(workerUrl, { workerData: { coreUrl } });
        const finish = (): void => {
            if (settled) return;
            settled = true;
            void worker.terminate().then(() => resolve());
        };
        const dispatch = (): void => {
            if (stopped || next >= seeds.length) {
                current = undefined;
                finish();
                return;
            }
            current = seeds[next++] as number;
            worker.postMessage({ seed: current });
        };
        const record = (result: SimResult): void => {
            results.push(result);
            if (!result.ok && options.stopOnFailure === true) stopped = true;
            options.onResult?.(result, results.length);
        };
        worker.on('message', (message: SimResult | { ready: true }) => {
            if ('ready' in message) {
                isReady = true;
                dispatch();
                return;
            }
            record(message);
            dispatch();
        });
        const die = (why: string): void => {
            if (settled) return;
            if (!isReady) {
                // The worker cannot even load the core: fail the next seed with the reason and stop.
                stopped = true;
                if (next < seeds.length) record(crashResult(seeds[next++] as number, why));
                settled = true;
                resolve();
                return;
            }
            if (current !== undefined) record(crashResult(current, why));
            current = undefined;
            // Replace the dead worker: the remaining seeds still need running.
            settled = true;
            void runOne().then(resolve);
        };
        worker.on('error', (error) => die(error.stack ?? String(error)));
        worker.on('exit', (code) => die(`worker exited with code ${code}`));
    });
    const pool: Promise<void>[] = [];
    for (let i = 0; i < workerCount; i++) pool.push(runOne());
    await Promise.all(pool);
    return results.sort((a, b) => a.seed - b.seed);
}

function crashResult(seed: number, message: string): SimResult {
    return {
        seed,
        ok: false,
        kind: 'crash',
        message,
        traceHash: '',
        simTimeMs: 0,
        wallMs: 0,
        counters: emptyCounters(),
        options: '',
        leaderAfterHealMs: undefined,
        convergedAfterHealMs: undefined,
        ops: 0,
    };
}
