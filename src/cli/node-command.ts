// `tqlite node`: runs one node in the foreground. Structured logs (JSON lines) on stderr;
// SIGTERM or SIGINT hands over (role, leadership) and exits 0. SIGUSR2 logs one 'status' line
// (role, term, commit/applied/last index, and every database's digest and integrity): the fault
// tests (test/jepsen/nemesis) compare nodes with it.
//
// Test-only flags (for test/jepsen/nemesis, never for production):
//   --listen HOST:PORT        listen here while the cluster knows the node as --address (the fault
//                             tests put a proxy at --address that forwards to --listen);
//   --unsafe-power-cut-mode   the raft log, the node's info and cluster.yaml go through BufferedFs
//                             (src/lib/real-fs.ts): writes stay in this process's memory until
//                             fsync, so `kill -9` loses every unsynced byte, like a power cut.
//                             NOT covered: the SQLite database files are written by the worker
//                             thread with SQLite's own I/O and live in the OS page cache, so a
//                             kill -9 keeps them (a real power cut could lose their unsynced
//                             pages); directory operations (create/rename/unlink) are not undone.

import { parseArgs } from 'node:util';
import { createNode } from '../index.js';
import { BufferedFs } from '../lib/real-fs.js';
import { jsonLogger, type Logger, type LogLevel } from '../lib/logger.js';
import { parseInteger, parseU64, splitServers, tlsArgOptions, tlsFromArgs, tlsUsage } from './args.js';

export const nodeUsage = `tqlite node --address HOST:PORT --data DIR [--join A,B] [--voters N] [--standbys N]
            [--failure-domain N] [--weight N] [--lease-reads] [--tick-ms 100] [--log-level info]
            ${tlsUsage}   (go-dqlite's cluster TLS, mutual)
            test-only: [--listen HOST:PORT] [--unsafe-power-cut-mode] (see node-command.ts)`;

export async function nodeCommand(argv: string[]): Promise<number> {
    const { values } = parseArgs({
        args: argv,
        options: {
            address: { type: 'string' },
            data: { type: 'string' },
            join: { type: 'string' },
            voters: { type: 'string' },
            standbys: { type: 'string' },
            'failure-domain': { type: 'string' },
            weight: { type: 'string' },
            'log-level': { type: 'string' },
            'tick-ms': { type: 'string' },
            'lease-reads': { type: 'boolean' },
            ...tlsArgOptions,
            listen: { type: 'string' },
            'unsafe-power-cut-mode': { type: 'boolean' },
        },
        strict: true,
    });
    if (values.address === undefined || values.data === undefined) {
        process.stderr.write(`usage: ${nodeUsage}\n`);
        return 2;
    }
    const tls = tlsFromArgs(values);
    const logger = jsonLogger({ level: (values['log-level'] ?? 'info') as LogLevel });
    // Installed first: a SIGUSR2 during startup must not kill the process (its default action).
    let started: Awaited<ReturnType<typeof createNode>> | undefined;
    let failedEarly = false;
    const onStatus = (): void => {
        if (started === undefined) logger.info({}, 'status unavailable: starting');
        else void logStatus(started, logger);
    };
    process.on('SIGUSR2', onStatus);
    const powerCut = values['unsafe-power-cut-mode'] === true;
    if (powerCut) logger.warn({}, 'TEST-ONLY power-cut mode: unsynced raft-log writes are lost on kill -9');
    const node = await createNode({
        address: values.address,
        ...(values.listen === undefined ? {} : { listenAddress: values.listen }),
        ...(powerCut ? { fs: new BufferedFs() } : {}),
        dataDir: values.data,
        join: values.join === undefined ? [] : splitServers(values.join, '--join'),
        failureDomain: parseU64(values['failure-domain'], '--failure-domain'),
        weight: parseU64(values.weight, '--weight'),
        tickMs: parseInteger(values['tick-ms'], '--tick-ms'),
        leaseReads: values['lease-reads'] === true,
        ...(tls === undefined ? {} : { tls }),
        roles: {
            voters: parseInteger(values.voters, '--voters'),
            standbys: parseInteger(values.standbys, '--standbys'),
        },
        logger,
        onFailure: (error) => {
            logger.error({ err: error }, 'node failed; exiting');
            process.exitCode = 1;
            // A failure before createNode() returned (its gateway still starting) closes below.
            if (started !== undefined) void started.close().finally(() => process.exit(1));
            else failedEarly = true;
        },
    });
    started = node;
    if (failedEarly) {
        await node.close();
        process.exit(1);
    }
    logger.info({ id: String(node.id), address: node.address, pid: process.pid }, 'node started');
    await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
            logger.info({ signal }, 'stopping: handing over');
            process.off('SIGTERM', onTerm);
            process.off('SIGINT', onInt);
            resolve();
        };
        const onTerm = (): void => stop('SIGTERM');
        const onInt = (): void => stop('SIGINT');
        process.on('SIGTERM', onTerm);
        process.on('SIGINT', onInt);
    });
    await node.close();
    started = undefined;
    process.off('SIGUSR2', onStatus);
    logger.info({}, 'node stopped');
    return 0;
}

/** One 'status' log line: what the fault tests compare across nodes (see the file comment). */
async function logStatus(node: Awaited<ReturnType<typeof createNode>>, logger: Logger): Promise<void> {
    try {
        const status = node.status();
        const inspection = await node.inspect();
        logger.info({
            role: status.role,
            term: status.term,
            leader: String(status.leader),
            commitIndex: status.commitIndex,
            appliedIndex: status.appliedIndex,
            lastIndex: status.lastIndex,
            fsmAppliedIndex: inspection.appliedIndex,
            voters: status.configuration.servers.filter((s) => s.role === 'voter').map((s) => s.address),
            members: status.configuration.servers.length,
            databases: inspection.databases.map((d) => ({
                database: d.database, sizePages: d.sizePages, sha256: d.sha256, integrity: d.integrity,
            })),
        }, 'status');
    } catch (error) {
        logger.warn({ err: error }, 'status unavailable');
    }
}
