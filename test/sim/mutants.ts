// Tests the tests (TESTING.md §8(a), "harness sensitivity"): plants one known raft bug at a time
// in a copy of the compiled core — or a storage bug in the compiled log store the simulated
// disks run (area 'log') — and checks that the simulator catches it within a budget of seeds.
// Run after a build:
//
//   node build/test/sim/mutants.js [--seeds 500] [--from 1] [--workers 2] [--only name,name]
//                                   [--src DIR]   (compiled src/ to mutate; default build/src)
//
// For each mutant: copy build/src and build/test/sim to a temp dir, apply the mutant's text patch to the compiled
// JavaScript (each patch must match exactly once, or the mutant is reported as "not applied":
// the core changed and the patch needs updating), run seeds from..from+N-1 on the patched core
// (stopping at the first failure) and report the seed that caught it and how. Seeds that already
// fail on the unpatched core are run first as a baseline and left out, so a mutant is never
// "caught" by a bug that was there anyway. Exit code 1 when a mutant survives or cannot apply.

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runSeeds } from './runner.js';
import type { SimResult } from './simulation.js';

interface Mutant {
    readonly name: string;
    readonly description: string;
    /** File under src/raft, or under src/log for a storage bug (compiled .js). */
    readonly file: string;
    /** Where the file is: the raft core (default) or the durable log the simulated disks run. */
    readonly area?: 'raft' | 'log';
    readonly find: RegExp;
    readonly replace: string;
}

/** The planted bugs: TESTING.md §8(a)'s list first, then others of the same families. */
export const MUTANTS: readonly Mutant[] = [
    {
        name: 'vote-without-log-check',
        description: 'a vote is granted without the log up-to-date check (§5.4.1)',
        file: 'core.js',
        find: /const granted = canVote && this\.log\.isUpToDate\(m\.lastIndex, m\.lastTerm\);/,
        replace: 'const granted = canVote;',
    },
    {
        name: 'vote-not-persisted',
        description: 'the vote response leaves before votedFor is durable',
        file: 'core.js',
        find: /granted, preVote: m\.preVote,(\s*)\};(\s*)this\.messagesAfterPersist\.push\(response\);/,
        replace: 'granted, preVote: m.preVote,$1};$2this.messages.push(response);',
    },
    {
        name: 'commit-old-term-by-counting',
        description: 'the leader commits an entry of an earlier term by counting replicas (§5.4.2)',
        file: 'core.js',
        find: /if \(candidate <= this\.log\.committed \|\| this\.log\.term\(candidate\) !== this\.term\)/,
        replace: 'if (candidate <= this.log.committed)',
    },
    {
        name: 'follower-keeps-conflicting-suffix',
        description: 'a follower does not truncate a conflicting suffix; it keeps its own entries',
        file: 'log.js',
        find: /if \(ours === entry\.term\)(\s*)continue;/,
        replace: 'if (ours !== undefined)$1continue;',
    },
    {
        name: 'read-without-read-index',
        description: 'reads are released at once with the leader\'s commit index, without a quorum round',
        file: 'core.js',
        find: /this\.readOnly\.add\(requestId\);/,
        replace: 'this.readStates.push({ requestId, index: this.log.committed }); return;',
    },
    {
        name: 'ack-before-persist',
        description: 'a follower acknowledges appended entries before they are durable',
        file: 'core.js',
        find: /if \(durableClaim\)\s*this\.messages\.push\(response\);\s*else\s*this\.messagesAfterPersist/,
        replace: 'this.messages',
    },
    {
        name: 'commit-not-bounded-by-last-new',
        description: 'a follower sets its commit index to the leader\'s, not bounded by the last new entry',
        file: 'core.js',
        find: /this\.log\.commitTo\(Math\.min\(m\.commit, lastNew\)\);/,
        replace: 'this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));',
    },
    {
        name: 'leader-counts-unpersisted-self',
        description: 'the leader counts its own entries before they are durable (§10.2.1)',
        file: 'core.js',
        find: /id === this\.id \? this\.log\.persisted :/,
        replace: 'id === this.id ? this.log.lastIndex() :',
    },
    {
        name: 'up-to-date-ignores-term',
        description: 'the up-to-date check compares only log lengths, not last terms',
        file: 'log.js',
        find: new RegExp(String.raw`return lastTerm > this\.lastTerm\(\) \|\| ` +
            String.raw`\(lastTerm === this\.lastTerm\(\) && lastIndex >= this\.lastIndex\(\)\);`),
        replace: 'return lastIndex >= this.lastIndex();',
    },
    {
        name: 'stale-term-accepted',
        description: 'messages from older terms are processed as if current',
        file: 'core.js',
        find: /else if \(m\.term < this\.term\) \{(\s*)this\.stepStale\(m\);(\s*)return;/,
        replace: 'else if (m.term < this.term && false) {$1this.stepStale(m);$2return;',
    },
    {
        name: 'hard-state-only-on-term-change',
        description: 'the hard state is persisted only when the term changes, not when the vote does',
        file: 'core.js',
        find: new RegExp(String.raw`const hardState = hard\.term === this\.lastHard\.term && ` +
            String.raw`hard\.vote === this\.lastHard\.vote \? undefined : hard;`),
        replace: 'const hardState = hard.term === this.lastHard.term ? undefined : hard;',
    },
    {
        name: 'read-index-before-term-commit',
        description: 'a new leader serves ReadIndex before committing an entry of its term',
        file: 'core.js',
        find: /if \(this\.role !== 'leader' \|\| !this\.hasCommittedInTerm\(\) \|\| !this\.readOnly\.wantsRound\(\)\)/,
        replace: 'if (this.role !== \'leader\' || !this.readOnly.wantsRound())',
    },
    {
        name: 'quorum-half-not-majority',
        description: 'a quorum is half of the voters (rounded up), not a strict majority',
        file: 'quorum.js',
        find: /return Math\.floor\(voterCount \/ 2\) \+ 1;/,
        replace: 'return Math.max(1, Math.ceil(voterCount / 2));',
    },
    {
        name: 'concurrent-membership-changes',
        description: 'a membership change is accepted while another one is still uncommitted',
        file: 'core.js',
        find: new RegExp(String.raw`if \(this\.pendingChange !== undefined \|\| this\.promotion !== undefined \|\| ` +
            String.raw`this\.hasUncommittedConfiguration\(\)\)`),
        replace: 'if (this.promotion !== undefined)',
    },
    // Storage bugs: the simulated disks run the real LogStore on SimFs, so a store that
    // acknowledges what a power cut can still take away must be caught too.
    {
        name: 'log-append-without-fdatasync',
        description: 'the log store acknowledges an appended batch without fdatasync',
        area: 'log',
        file: 'log-store.js',
        find: /await open\.file\.write\(offset, bytes\);(\s*)await open\.file\.datasync\(\);/,
        replace: 'await open.file.write(offset, bytes);',
    },
    {
        name: 'log-append-durable-early-ack',
        description: 'the log store acknowledges a batch before its O_DSYNC write finished (not awaited)',
        area: 'log',
        file: 'log-store.js',
        find: /await open\.file\.writeDurable\(offset, bytes\);/,
        replace: 'void open.file.writeDurable(offset, bytes).catch(() => undefined);',
    },
    {
        name: 'term-vote-without-fdatasync',
        description: 'term and vote are acknowledged as durable without fdatasync of the metadata file',
        area: 'log',
        file: 'metadata.js',
        find: /await file\.datasync\(\);/,
        replace: '',
    },
    {
        name: 'snapshot-rename-without-dir-fsync',
        description: 'a snapshot is acknowledged after its rename without fsync of the directory',
        area: 'log',
        file: 'snapshot-store.js',
        find: /(await this\.fs\.rename\(writer\.tmpPath, [^;]*;)\s*await this\.fs\.fsyncDir\(this\.dir\);/,
        replace: '$1',
    },
    {
        name: 'failed-fsync-retried',
        description: 'a failed I/O call (fsync) is retried instead of stopping the store (fsyncgate)',
        area: 'log',
        file: 'guard.js',
        find: /return running\.catch\(\(error\) => \{/,
        replace: 'return running.catch(() => fn()).catch((error) => {',
    },
];

interface Args {
    seeds: number;
    from: number;
    workers: number;
    only: string[] | undefined;
    src: string;
}

function parseArgs(argv: readonly string[]): Args {
    const args: Args = { seeds: 500, from: 1, workers: 2, only: undefined, src: join(buildRoot(), 'src') };
    for (let i = 0; i < argv.length; i++) {
        const name = argv[i];
        const value = argv[i + 1];
        if (value === undefined) throw new Error(`${name} needs a value`);
        i++;
        if (name === '--seeds') args.seeds = Number(value);
        else if (name === '--from') args.from = Number(value);
        else if (name === '--workers') args.workers = Number(value);
        else if (name === '--only') args.only = value.split(',');
        else if (name === '--src') args.src = value;
        else throw new Error(`unknown argument ${name}`);
    }
    return args;
}

/** The build root this script was compiled into (build/ or build-NAME/). */
function buildRoot(): string {
    return fileURLToPath(new URL('../../', import.meta.url));
}

function countMatches(text: string, find: RegExp): number {
    return [...text.matchAll(new RegExp(find.source, 'g'))].length;
}

interface MutantReport {
    readonly name: string;
    readonly status: 'caught' | 'survived' | 'not applied';
    readonly seed: number | undefined;
    readonly seedsRun: number;
    readonly kind: string | undefined;
    readonly message: string;
    readonly wallMs: number;
}

async function runMutant(mutant: Mutant, seeds: readonly number[], workers: number, src: string):
    Promise<MutantReport> {
    const started = performance.now();
    const temp = mkdtempSync(join(tmpdir(), `tqlite-mutant-${mutant.name}-`));
    try {
        // The simulator runs from the copy too, so a patch of src/log reaches its disks.
        cpSync(src, join(temp, 'src'), { recursive: true });
        cpSync(join(src, '..', 'test', 'sim'), join(temp, 'test', 'sim'), { recursive: true });
        writeFileSync(join(temp, 'package.json'), '{"type":"module"}\n');
        const path = join(temp, 'src', mutant.area ?? 'raft', mutant.file);
        const text = readFileSync(path, 'utf8');
        const matches = countMatches(text, mutant.find);
        if (matches !== 1) {
            return {
                name: mutant.name, status: 'not applied', seed: undefined, seedsRun: 0, kind: undefined,
                message: `the patch matches ${matches} times in ${mutant.file}`, wallMs: performance.now() - started,
            };
        }
        writeFileSync(path, text.replace(mutant.find, mutant.replace));
        const coreUrl = pathToFileURL(join(temp, 'src', 'raft', 'core.js')).href;
        const workerUrl = pathToFileURL(join(temp, 'test', 'sim', 'worker.js'));
        const results = await runSeeds(seeds, { workers, coreUrl, workerUrl, stopOnFailure: true });
        const failed = results.filter((r) => !r.ok).sort((a, b) => a.seed - b.seed)[0];
        const wallMs = performance.now() - started;
        if (failed === undefined) {
            return {
                name: mutant.name, status: 'survived', seed: undefined, seedsRun: results.length, kind: undefined,
                message: '', wallMs,
            };
        }
        return {
            name: mutant.name, status: 'caught', seed: failed.seed, seedsRun: results.length, kind: failed.kind,
            message: (failed.message ?? '').split('\n')[0] ?? '', wallMs,
        };
    } finally {
        rmSync(temp, { recursive: true, force: true });
    }
}

async function main(): Promise<number> {
    const args = parseArgs(process.argv.slice(2));
    const all: number[] = [];
    for (let i = 0; i < args.seeds; i++) all.push(args.from + i);
    const baselineUrl = pathToFileURL(join(args.src, 'raft', 'core.js')).href;
    const baseline: SimResult[] = await runSeeds(all, { workers: args.workers, coreUrl: baselineUrl });
    const baselineFailures = new Set(baseline.filter((r) => !r.ok).map((r) => r.seed));
    const seeds = all.filter((s) => !baselineFailures.has(s));
    process.stdout.write(`seeds ${args.from}..${args.from + args.seeds - 1}; ${baselineFailures.size} fail on the ` +
        `unpatched core and are left out${baselineFailures.size > 0 ? ` (${[...baselineFailures].join(' ')})` : ''}\n`);
    const mutants = MUTANTS.filter((m) => args.only === undefined || args.only.includes(m.name));
    const reports: MutantReport[] = [];
    for (const mutant of mutants) {
        const report = await runMutant(mutant, seeds, args.workers, args.src);
        reports.push(report);
        const where = report.seed === undefined ? '' : ` seed ${report.seed} (${report.kind}, after ` +
            `${report.seedsRun} seeds run)`;
        process.stdout.write(`${report.status.padEnd(11)} ${mutant.name.padEnd(34)}${where} ` +
            `${(report.wallMs / 1000).toFixed(1)} s\n    ${report.message}\n`);
    }
    process.stdout.write('\n| mutant | planted bug | caught by seed | how |\n|---|---|---|---|\n');
    for (const report of reports) {
        const mutant = mutants.find((m) => m.name === report.name) as Mutant;
        const how = report.status === 'caught' ? `${report.kind}: ${report.message}` : report.status;
        process.stdout.write(`| ${report.name} | ${mutant.description} | ${report.seed ?? '-'} | ` +
            `${how.replaceAll('|', '/').slice(0, 160)} |\n`);
    }
    return reports.every((r) => r.status === 'caught') ? 0 : 1;
}

main().then((code) => {
    process.exitCode = code;
}, (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 2;
});
