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

export async function main(argv: string[]): Promise<number> {
    const [command, ...rest] = argv;
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

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1]);
if (isMain) {
    main(process.argv.slice(2)).then((code) => {
        process.exitCode = code;
    }, (error: unknown) => {
        const code = (error as { code?: unknown }).code;
        process.stderr.write(`tqlite: ${error instanceof Error ? error.message : String(error)}`
            + `${typeof code === 'string' ? ` (${code})` : ''}\n`);
        process.exitCode = 1;
    });
}
