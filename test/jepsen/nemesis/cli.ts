// The nemesis harness from the command line (issue 8):
//
//   node build/test/jepsen/nemesis/cli.js --duration S --nodes N --profile kill|pause|partition|mixed|disk
//        [--seed X] [--target tqlite|dqlite] [--no-power-cut] [--keep-logs]
//
// Prints the seed first (a run without --seed picks one), the faults as they happen, and a
// summary with figures; exits 1 on any violation, 2 on bad arguments, 3 on a harness error.
// The disk profile (full disks) mounts a tmpfs per node: it needs root.

import { parseArgs } from 'node:util';
import { randomInt } from 'node:crypto';
import { formatSummary, runNemesis } from './run.js';
import { PROFILES, type Profile } from './nemesis.js';

const USAGE = `usage: node build/test/jepsen/nemesis/cli.js --duration S --nodes N
        --profile kill|pause|partition|mixed|disk [--seed X] [--target tqlite|dqlite] [--no-power-cut] [--keep-logs]
        [--sanity-stale-reads]   (tests the harness: weak reads from a node's local copy; must FAIL)`;

async function main(argv: string[]): Promise<number> {
    let values;
    try {
        ({ values } = parseArgs({
            args: argv,
            options: {
                duration: { type: 'string', default: '60' },
                nodes: { type: 'string', default: '3' },
                profile: { type: 'string', default: 'mixed' },
                seed: { type: 'string' },
                target: { type: 'string', default: 'tqlite' },
                'no-power-cut': { type: 'boolean', default: false },
                'keep-logs': { type: 'boolean', default: false },
                'sanity-stale-reads': { type: 'boolean', default: false },
                help: { type: 'boolean', default: false },
            },
            strict: true,
        }));
    } catch (error) {
        process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
        return 2;
    }
    if (values.help) {
        process.stdout.write(`${USAGE}\n`);
        return 0;
    }
    const durationS = Number(values.duration);
    const nodes = Number(values.nodes);
    const seed = values.seed === undefined ? randomInt(2 ** 31) : Number(values.seed);
    const profile = values.profile as Profile;
    if (!Number.isFinite(durationS) || durationS <= 0 || !Number.isInteger(nodes) || nodes < 1 || nodes > 9
        || !Number.isSafeInteger(seed) || !(profile in PROFILES)) {
        process.stderr.write(`bad arguments\n${USAGE}\n`);
        return 2;
    }
    if (values.target === 'dqlite') {
        const { runDqlite } = await import('./dqlite.js');
        const abort = new AbortController();
        process.once('SIGTERM', () => abort.abort());
        process.once('SIGINT', () => abort.abort());
        try {
            return await runDqlite({
                seed, durationS, nodes, profile, signal: abort.signal, keepLogs: values['keep-logs'],
                sanityStaleReads: values['sanity-stale-reads'],
            });
        } catch (error) {
            process.stderr.write(`harness error (seed ${seed}): ${(error as Error).stack ?? String(error)}\n`);
            return 3;
        }
    }
    if (values.target !== 'tqlite') {
        process.stderr.write(`unknown --target ${values.target}\n${USAGE}\n`);
        return 2;
    }
    process.stdout.write(`seed ${seed}\n`);
    // SIGTERM / SIGINT end the fault phase early; the heal, the checks and the cleanup still run.
    const abort = new AbortController();
    const onSignal = (): void => abort.abort();
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    try {
        const result = await runNemesis({
            seed, durationS, nodes, profile, powerCut: !values['no-power-cut'], keepLogs: values['keep-logs'],
            signal: abort.signal, sanityStaleReads: values['sanity-stale-reads'],
        });
        process.stdout.write(`${formatSummary(result)}\n`);
        return result.violations.length === 0 ? 0 : 1;
    } catch (error) {
        process.stderr.write(`harness error (seed ${seed}): ${(error as Error).stack ?? String(error)}\n`);
        return 3;
    } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
    }
}

process.exitCode = await main(process.argv.slice(2));
