// Loads the raft core under test. The simulator never imports src/raft/core.ts statically: the
// module is loaded by URL, so the mutation script can point the simulator at a patched copy of
// the compiled core (test/sim/mutants.ts) and the same harness proves or breaks it.
//
// The adapter looks up, among the modules of the core's directory, the class `RaftCore`, a
// function building the bootstrap state of a new cluster, and the configuration codec.

import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Bootstrap, InitialState, RaftConfig, RaftCoreApi } from '../../src/raft/api.js';
import type { Configuration } from '../../src/raft/types.js';

export interface CoreFactory {
    readonly moduleUrl: string;
    create(config: RaftConfig, initial: InitialState): RaftCoreApi;
    bootstrap(configuration: Configuration): Bootstrap;
    decodeConfiguration(data: Uint8Array): Configuration;
}

type AnyFunction = (...args: never[]) => unknown;

export function defaultCoreUrl(): string {
    return new URL('../../src/raft/core.js', import.meta.url).href;
}

/** Resolves a path or URL given on the command line. */
export function toModuleUrl(pathOrUrl: string): string {
    if (pathOrUrl.startsWith('file:')) return pathOrUrl;
    return pathToFileURL(pathOrUrl).href;
}

export async function loadCoreFactory(moduleUrl: string = defaultCoreUrl()): Promise<CoreFactory> {
    const exportsByName = new Map<string, unknown>();
    const directory = dirname(fileURLToPath(moduleUrl));
    const files = readdirSync(directory).filter((f) => f.endsWith('.js')).sort();
    // The core module first, so its names win.
    const main = await import(moduleUrl) as Record<string, unknown>;
    for (const [name, value] of Object.entries(main)) exportsByName.set(name, value);
    for (const file of files) {
        const url = pathToFileURL(`${directory}/${file}`).href;
        if (url === moduleUrl) continue;
        const mod = await import(url) as Record<string, unknown>;
        for (const [name, value] of Object.entries(mod)) {
            if (!exportsByName.has(name)) exportsByName.set(name, value);
        }
    }
    const find = (names: readonly string[], what: string): AnyFunction => {
        for (const name of names) {
            const value = exportsByName.get(name);
            if (typeof value === 'function') return value as AnyFunction;
        }
        throw new Error(`the core at ${moduleUrl} exports no ${what} (looked for ${names.join(', ')})`);
    };
    const RaftCore = find(['RaftCore'], 'RaftCore class') as unknown as
        new (config: RaftConfig, initial: InitialState) => RaftCoreApi;
    const bootstrap = find(['bootstrap', 'bootstrapCluster', 'makeBootstrap'], 'bootstrap function') as unknown as
        (configuration: Configuration) => Bootstrap;
    const decodeConfiguration = find(['decodeConfiguration'], 'configuration decoder') as unknown as
        (data: Uint8Array) => Configuration;
    return {
        moduleUrl,
        create: (config, initial) => new RaftCore(config, initial),
        bootstrap,
        decodeConfiguration,
    };
}
