// Goal: at least 1,000,000 fuzzed inputs per run, none of which makes the codec throw anything
// but ProtocolError (issue 5).
// Method: the seeded wire fuzzer (fuzz.ts) with a 60 s time box; the seed and the counts are
// printed, and WIRE_FUZZ_SEED=<seed> replays the run exactly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzSeed, runFuzz } from './fuzz.js';

test('1,000,000 fuzzed inputs within 60 s raise nothing but ProtocolError', () => {
    const seed = fuzzSeed();
    console.log(`wire fuzz seed=${seed} (replay: WIRE_FUZZ_SEED=${seed})`);
    const result = runFuzz({ seed, inputsMax: 1_000_000, timeBoxMs: 60_000 });
    console.log(`wire fuzz: ${JSON.stringify(result)}`);
    assert.ok(result.inputs >= 1_000_000, `only ${result.inputs} inputs within the time box`);
    // Every one of the 20 request and 12 response kinds was reached from damaged input.
    assert.equal(result.kindsDecoded, 32);
});
