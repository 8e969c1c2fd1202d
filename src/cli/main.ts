// The `tqlite` command.

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCommand, benchUsage } from './bench-command.js';
import { clusterCommand, clusterUsage } from './cluster-command.js';
import { demoCommand } from './demo-command.js';
import { nodeCommand, nodeUsage } from './node-command.js';
import { shellCommand, shellUsage } from './shell-command.js';

const USAGE = `usage:
  ${nodeUsage}
  ${shellUsage}
  ${clusterUsage.split('\n').join('\n  ')}
  ${benchUsage}
  tqlite demo`;

const COMMAND_USAGE: Record<string, string> = {
    node: nodeUsage, shell: shellUsage, cluster: clusterUsage, bench: benchUsage, demo: 'tqlite demo',
};

export async function main(argv: string[]): Promise<number> {
    const [command, ...rest] = argv;
    const usage = command === undefined ? undefined : COMMAND_USAGE[command];
    if (usage !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
        process.stdout.write(`usage:\n  ${usage.split('\n').join('\n  ')}\n`);
        return 0;
    }
    switch (command) {
        case 'node': return nodeCommand(rest);
        case 'shell': return shellCommand(rest);
        case 'cluster': return clusterCommand(rest);
        case 'demo': return demoCommand();
        case 'bench': return benchCommand(rest);
        default:
            process.stderr.write(`${USAGE}\n`);
            return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
    }
}

/**
 * Runs the command and sets process.exitCode; the one entry point of bin/tqlite.js and of this file
 * run directly. A failure is one line on stderr (message and error code), never a stack trace:
 * a bad flag, a refused start (ConfigError) and a lost connection are the user's to read.
 */
export async function runCli(argv: string[]): Promise<void> {
    try {
        process.exitCode = await main(argv);
    } catch (error) {
        const code = (error as { code?: unknown }).code;
        const message = error instanceof Error ? error.message : String(error);
        const badArgs = typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
        process.stderr.write(`tqlite: ${message}${typeof code === 'string' ? ` (${code})` : ''}\n`
            + (badArgs ? `${USAGE}\n` : ''));
        process.exitCode = badArgs ? 2 : 1;
    }
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1]);
if (isMain) await runCli(process.argv.slice(2));
