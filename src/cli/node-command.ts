// `tqlite node`: runs one node in the foreground. Structured logs (JSON lines) on stderr;
// SIGTERM or SIGINT hands over (role, leadership) and exits 0.

import { parseArgs } from 'node:util';
import { createNode } from '../index.js';
import { jsonLogger, type LogLevel } from '../lib/logger.js';
import { parseInteger, parseU64, splitServers } from './args.js';

export const nodeUsage = `tqlite node --address HOST:PORT --data DIR [--join A,B] [--voters N] [--standbys N]
            [--failure-domain N] [--weight N] [--log-level info]`;

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
        },
        strict: true,
    });
    if (values.address === undefined || values.data === undefined) {
        process.stderr.write(`usage: ${nodeUsage}\n`);
        return 2;
    }
    const logger = jsonLogger({ level: (values['log-level'] ?? 'info') as LogLevel });
    const node = await createNode({
        address: values.address,
        dataDir: values.data,
        join: values.join === undefined ? [] : splitServers(values.join, '--join'),
        failureDomain: parseU64(values['failure-domain'], '--failure-domain'),
        weight: parseU64(values.weight, '--weight'),
        tickMs: parseInteger(values['tick-ms'], '--tick-ms'),
        roles: {
            voters: parseInteger(values.voters, '--voters'),
            standbys: parseInteger(values.standbys, '--standbys'),
        },
        logger,
        onFailure: (error) => {
            logger.error({ err: error }, 'node failed; exiting');
            process.exitCode = 1;
            void node.close().finally(() => process.exit(1));
        },
    });
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
    logger.info({}, 'node stopped');
    return 0;
}
