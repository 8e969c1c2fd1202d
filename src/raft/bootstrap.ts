// The first write of a brand-new cluster (dqlite's raft_bootstrap): term 1 and one CHANGE
// entry at index 1 holding the initial configuration. The driver writes it to empty storage
// and then starts the core from it; the configuration takes effect at once (§4.1) and commits
// when the first leader commits its no-op.

import { assert } from '../lib/assert.js';
import type { Bootstrap } from './api.js';
import { encodeConfiguration, validateConfiguration } from './configuration.js';
import { EntryType } from './types.js';
import type { Configuration } from './types.js';

export function bootstrap(configuration: Configuration): Bootstrap {
    validateConfiguration(configuration);
    assert(configuration.servers.some((s) => s.role === 'voter'), 'a bootstrap configuration needs a voter');
    return {
        hardState: { term: 1, vote: 0n },
        entries: [{ term: 1, index: 1, type: EntryType.change, data: encodeConfiguration(configuration) }],
        configuration,
    };
}
