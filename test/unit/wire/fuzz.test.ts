// Goal: the decoders never throw anything but ProtocolError, in every ordinary test run.
// Method: a short, seeded run of the wire fuzzer (fuzz.ts; the ≥ 1,000,000-input run is
// fuzz.slow.test.ts). The seed is printed; WIRE_FUZZ_SEED=<seed> replays it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzSeed, runFuzz } from './fuzz.js';

test('50,000 fuzzed inputs decode or raise ProtocolError only', () => {
    const seed = fuzzSeed();
    console.log(`wire fuzz seed=${seed} (replay: WIRE_FUZZ_SEED=${seed})`);
    const result = runFuzz({ seed, inputsMax: 50_000, timeBoxMs: 20_000 });
    console.log(`wire fuzz: ${JSON.stringify(result)}`);
    assert.ok(result.inputs > 0);
    assert.ok(result.decoded > 0, 'some mutated inputs must still decode');
    assert.ok(result.protocolErrors > 0, 'some inputs must be rejected');
});
