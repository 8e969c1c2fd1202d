// The simulator's command line (`npm run sim -- ...`, compiled to build/test/sim/cli.js).
//
//   --seeds N [--from S]   run seeds S..S+N-1 on worker threads (default S derived from the time,
//                          printed); prints a one-line repro per failing seed; exit code
//                          10 = safety violation, 11 = liveness failure, 12 = crash, 0 = all passed
//   --seed X [--trace]     run one seed in this thread, verbosely (with --trace: every notable
//                          event; --trace-messages: every message too); the same seed always
//                          prints the same trace hash
//   --workers W            worker threads (default 2)
//   --core PATH            the compiled core module to test (default build/src/raft/core.js)
//   --stop-on-failure      stop dispatching seeds after the first failure
//   --json                 print the results as JSON (one object) instead of text

import { loadCoreFactory, toModuleUrl } from './core-adapter.js';
import { EXIT_CODES } from './failure.js';
import { coverageLines, exitCodeOf, failureLines, reproCommand, summaryLines } from './report.js';
import { runSeeds } from './runner.js';
import { simulate } from './simulation.js';

interface Args {
    seed: number | undefined;
    seeds: number | undefined;
    from: number | undefined;
    workers: number;
    core: string | undefined;
    trace: boolean;
    traceMessages: boolean;
    json: boolean;
    stopOnFailure: boolean;
}

function parseArgs(argv: readonly string[]): Args {
    const args: Args = {
        seed: undefined, seeds: undefined, from: undefined, workers: 2, core: undefined,
        trace: false, traceMessages: false, json: false, stopOnFailure: false,
    };
    // Accept both "--name value" and "--name=value".
    const words: string[] = [];
    for (const word of argv) {
        const eq = word.indexOf('=');
        if (word.startsWith('--') && eq > 0) words.push(word.slice(0, eq), word.slice(eq + 1));
        else words.push(word);
    }
    for (let i = 0; i < words.length; i++) {
        const name = words[i] as string;
        const text = (): string => {
            const value = words[++i];
            if (value === undefined) throw new Error(`${name} needs a value`);
            return value;
        };
        const integer = (): number => {
            const value = Number(text());
            if (!Number.isSafeInteger(value)) throw new Error(`${name} needs an integer`);
            return value;
        };
        if (name === '--seed') args.seed = integer();
        else if (name === '--seeds') args.seeds = integer();
        else if (name === '--from') args.from = integer();
        else if (name === '--workers') args.workers = integer();
        else if (name === '--core') args.core = text();
        else if (name === '--trace') args.trace = true;
        else if (name === '--trace-messages') args.trace = args.traceMessages = true;
        else if (name === '--json') args.json = true;
        else if (name === '--stop-on-failure') args.stopOnFailure = true;
        else throw new Error(`unknown argument ${name}`);
    }
    return args;
}

async function runOne(args: Args, seed: number): Promise<number> {
    const factory = await loadCoreFactory(args.core === undefined ? undefined : toModuleUrl(args.core));
    const sink = args.trace ? (line: string) => void process.stdout.write(`${line}\n`) : undefined;
    const result = await simulate(seed, factory, sink, args.traceMessages);
    if (args.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
        process.stdout.write(`seed ${seed}\n  ${result.options}\n`);
        const verdict = result.ok ? 'PASS' : `FAIL (${result.kind})`;
        process.stdout.write(`${verdict} after ${result.simTimeMs.toFixed(0)} ms ` +
            `simulated, ${result.counters.events} events, ${result.ops} client ops, ` +
            `wall ${result.wallMs.toFixed(0)} ms\n`);
        if (!result.ok) process.stdout.write(`${result.message}\n  repro: ${reproCommand(seed)}\n`);
        process.stdout.write(`leader after heal ${result.leaderAfterHealMs?.toFixed(0) ?? '-'} ms, converged ` +
            `${result.convergedAfterHealMs?.toFixed(0) ?? '-'} ms\n`);
        const counters = Object.entries(result.counters).map(([k, v]) => `${k}=${v}`).join(' ');
        process.stdout.write(`counters: ${counters}\ntrace hash ${result.traceHash}\n`);
    }
    return result.ok ? 0 : EXIT_CODES[result.kind ?? 'crash'];
}

async function runMany(args: Args, count: number): Promise<number> {
    const from = args.from ?? (Date.now() % 1_000_000_000);
    const seeds: number[] = [];
    for (let i = 0; i < count; i++) seeds.push(from + i);
    if (!args.json) process.stdout.write(`seeds ${from}..${from + count - 1} on ${args.workers} workers\n`);
    const started = performance.now();
    let lastReport = started;
    const results = await runSeeds(seeds, {
        workers: args.workers,
        coreUrl: args.core === undefined ? undefined : toModuleUrl(args.core),
        stopOnFailure: args.stopOnFailure,
        onResult: (result, done) => {
            if (args.json) return;
            if (!result.ok) {
                const first = (result.message ?? '').split('\n')[0];
                process.stdout.write(`FAIL seed ${result.seed} (${result.kind}): ${first}\n`);
            }
            const now = performance.now();
            if (now - lastReport > 10_000) {
                lastReport = now;
                process.stdout.write(`  ${done}/${count} seeds, ${((now - started) / 1000).toFixed(0)} s\n`);
            }
        },
    });
    const wallMs = performance.now() - started;
    if (args.json) {
        process.stdout.write(`${JSON.stringify({ from, count, wallMs, results })}\n`);
    } else {
        for (const line of coverageLines(results)) process.stdout.write(`${line}\n`);
        for (const line of failureLines(results)) process.stdout.write(`${line}\n`);
        for (const line of summaryLines(results, wallMs)) process.stdout.write(`${line}\n`);
    }
    return exitCodeOf(results);
}

async function main(): Promise<number> {
    const args = parseArgs(process.argv.slice(2));
    if (args.seed !== undefined) return runOne(args, args.seed);
    return runMany(args, args.seeds ?? 100);
}

// If the run never settled (a promise nothing resolves), the process must not exit with 0.
process.exitCode = EXIT_CODES.crash;
main().then((code) => {
    process.exitCode = code;
}, (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = EXIT_CODES.crash;
});
