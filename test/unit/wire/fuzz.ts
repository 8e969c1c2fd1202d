// The wire fuzzer shared by fuzz.test.ts (a short run in every test pass) and fuzz.slow.test.ts
// (≥ 1,000,000 inputs in a time box). Property: feeding any bytes through the FrameSplitter and
// decoding every frame as a request and as a response either succeeds or throws ProtocolError;
// any other exception is a bug. Inputs are mutations of valid encoded messages (structure-aware:
// many keep the header's word count consistent with the mutated body, so the body decoders are
// reached), splices of two messages, and plain random bytes. A seed replays a run exactly.

import { ProtocolError } from '../../../src/lib/errors.js';
import { SeededRandom } from '../../../src/lib/random.js';
import {
    FrameSplitter, PROTOCOL_VERSION_LEGACY, decodeRequest, decodeResponse, encodeHandshake, encodeRequest,
    encodeResponse,
} from '../../../src/wire/index.js';
import { request, response } from './generate.js';

export interface FuzzOptions {
    readonly seed: number;
    /** Stop after this many inputs. */
    readonly inputsMax: number;
    /** Stop once this much wall time passed (checked every 1000 inputs). */
    readonly timeBoxMs: number;
}

export interface FuzzResult {
    readonly inputs: number;
    readonly frames: number;
    readonly decoded: number;
    readonly protocolErrors: number;
    readonly elapsedMs: number;
    /** Message kinds that some mutated or random input decoded to (a coverage mark). */
    readonly kindsDecoded: number;
}

export class FuzzFailure extends Error {
    constructor(readonly seed: number, readonly input: number, readonly bytes: Buffer, readonly error: unknown) {
        super(`seed ${seed} input #${input} threw ${String(error)}; bytes ${bytes.toString('hex')}`, { cause: error });
    }
}

const HANDSHAKES = [encodeHandshake(), encodeHandshake(PROTOCOL_VERSION_LEGACY), Buffer.from('GET / HT')];
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xbb, 0xee, 0xff, 0x0c, 0x0b, 0x09];

function corpus(random: SeededRandom, size: number): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < size; i++) {
        if (i % 2 === 0) {
            const r = request(random);
            out.push(Buffer.from(encodeRequest(r.request, { schema: r.schema })));
        } else {
            out.push(Buffer.from(encodeResponse(response(random).response)));
        }
    }
    return out;
}

/** Makes the header's word count match the body (truncating the body to whole words). */
function fixWords(bytes: Buffer): Buffer {
    if (bytes.length < 8) return bytes;
    const words = Math.floor((bytes.length - 8) / 8);
    const fixed = bytes.subarray(0, 8 + words * 8);
    fixed.writeUInt32LE(words, 0);
    return fixed;
}

function mutate(random: SeededRandom, seedBytes: Buffer, other: Buffer): Buffer {
    let bytes = Buffer.from(seedBytes);
    const rounds = 1 + random.int(4);
    for (let i = 0; i < rounds; i++) {
        if (bytes.length === 0) break;
        const at = random.int(bytes.length);
        switch (random.int(10)) {
            case 0: bytes[at] = (bytes[at] as number) ^ (1 << random.int(8)); break;
            case 1: bytes[at] = random.pick(INTERESTING); break;
            case 2: bytes[at] = random.int(256); break;
            case 3: bytes = bytes.subarray(0, at); break;
            case 4: {
                const extra = Buffer.from(Array.from({ length: random.int(24) }, () => random.int(256)));
                bytes = Buffer.concat([bytes, extra]);
                break;
            }
            case 5:
                if (bytes.length >= 4) bytes.writeUInt32LE(random.pick([0, 1, 2, random.next32(), 0xffffffff]), 0);
                break;
            case 6:
                if (bytes.length >= 6) {
                    bytes[4] = random.int(24);
                    bytes[5] = random.int(3);
                }
                break;
            case 7: bytes = Buffer.concat([bytes.subarray(0, at), other.subarray(random.int(other.length))]); break;
            case 8:
                if (bytes.length > 16) bytes.fill(random.pick(INTERESTING), at, Math.min(bytes.length, at + 8));
                break;
            default: break;
        }
    }
    // Keep the framing consistent most of the time, so that the body decoders see the damage.
    return random.chance(0.7) ? fixWords(bytes) : bytes;
}

function randomBytes(random: SeededRandom): Buffer {
    const bytes = Buffer.alloc(8 + random.int(64));
    for (let i = 0; i < bytes.length; i++) bytes[i] = random.int(256);
    return random.chance(0.8) ? fixWords(bytes) : bytes;
}

/**
 * Runs the fuzzer. Stack traces are switched off meanwhile (most inputs raise two errors, and
 * capturing stacks would take most of the time); set WIRE_FUZZ_STACKS=1 when replaying a seed
 * to get the stack of a failure.
 */
export function runFuzz(options: FuzzOptions): FuzzResult {
    const stackTraceLimit = Error.stackTraceLimit;
    if (process.env['WIRE_FUZZ_STACKS'] !== '1') Error.stackTraceLimit = 0;
    try {
        return fuzzLoop(options);
    } finally {
        Error.stackTraceLimit = stackTraceLimit;
    }
}

function fuzzLoop(options: FuzzOptions): FuzzResult {
    const random = new SeededRandom(options.seed);
    const seeds = corpus(random.fork('corpus'), 4000);
    const started = performance.now();
    let inputs = 0;
    let frames = 0;
    let decoded = 0;
    let protocolErrors = 0;
    const kinds = new Set<string>();
    const allowed = (error: unknown): void => {
        if (!(error instanceof ProtocolError)) throw error;
        protocolErrors++;
    };
    while (inputs < options.inputsMax) {
        if (inputs % 1000 === 0 && performance.now() - started > options.timeBoxMs) break;
        // Mutants of a request are decoded as requests, mostly (structure-aware); random bytes and
        // one mutant in five are decoded both ways. Even corpus entries are requests.
        const index = random.int(seeds.length);
        const isRandom = random.chance(0.1);
        const input = isRandom ? randomBytes(random) : mutate(random, seeds[index] as Buffer, random.pick(seeds));
        const both = isRandom || random.chance(0.2);
        const asRequest = both || index % 2 === 0;
        const asResponse = both || index % 2 === 1;
        inputs++;
        try {
            // One input in ten goes through the server side: a handshake word first.
            const handshake = random.chance(0.1);
            const splitter = new FrameSplitter({ bodyBytesMax: 1 << 16, handshake });
            const stream = handshake ? Buffer.concat([HANDSHAKES[random.int(3)] as Buffer, input]) : input;
            const cut = random.int(stream.length + 1);
            splitter.push(stream.subarray(0, cut));
            splitter.push(stream.subarray(cut));
            if (handshake && splitter.handshake() === undefined) continue;
            for (;;) {
                let frame;
                try {
                    frame = splitter.next();
                } catch (error) {
                    allowed(error);
                    break;
                }
                if (frame === undefined) break;
                frames++;
                if (asRequest) {
                    try {
                        kinds.add(`request:${decodeRequest(frame).kind}`);
                        decoded++;
                    } catch (error) {
                        allowed(error);
                    }
                }
                if (asResponse) {
                    try {
                        const clusterFormat = random.chance(0.5) ? 1 : 0;
                        const response = decodeResponse(frame, { legacy: random.chance(0.2), clusterFormat });
                        kinds.add(`response:${response.kind}`);
                        decoded++;
                    } catch (error) {
                        allowed(error);
                    }
                }
            }
        } catch (error) {
            throw new FuzzFailure(options.seed, inputs - 1, input, error);
        }
    }
    const elapsedMs = performance.now() - started;
    return { inputs, frames, decoded, protocolErrors, elapsedMs, kindsDecoded: kinds.size };
}

/** The seed from WIRE_FUZZ_SEED, else a fresh one; always printed by the caller. */
export function fuzzSeed(): number {
    const fromEnv = process.env['WIRE_FUZZ_SEED'];
    if (fromEnv !== undefined && fromEnv !== '') return Number.parseInt(fromEnv, 10) | 0;
    return (Math.floor(Math.random() * 0x7fffffff) ^ Date.now()) | 0;
}
