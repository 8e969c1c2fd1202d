// Goal: the leaf utilities every other module trusts behave exactly as documented.
// Method: known vectors (CRC-32C), round trips (bytes), replay (seeded random), and
// transition tables (lifecycle, timers) driven by hand.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteReader, ByteWriter } from '../../../src/lib/bytes.js';
import { crc32c } from '../../../src/lib/crc32c.js';
import { SeededRandom } from '../../../src/lib/random.js';
import { Lifecycle } from '../../../src/lib/lifecycle.js';
import { ManualClock, TimerSet } from '../../../src/lib/clock.js';
import { Deferred } from '../../../src/lib/deferred.js';
import { DecodeError, NotLeaderError, TqliteError } from '../../../src/lib/errors.js';

test('crc32c matches the standard check value', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    const whole = crc32c(Buffer.from('hello world'));
    const parts = crc32c(Buffer.from(' world'), crc32c(Buffer.from('hello')));
    assert.equal(parts, whole);
});

test('crc32c (slicing-by-8) equals a bit-at-a-time reference on every alignment', () => {
    const reference = (d: Uint8Array, crc: number, start: number, end: number): number => {
        let c = ~crc;
        for (let i = start; i < end; i++) {
            c ^= d[i] as number;
            for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
        }
        return ~c >>> 0;
    };
    const data = Buffer.alloc(4096);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + (i >> 3)) & 0xff;
    for (let k = 0; k < 300; k++) {
        const start = (k * 37) % 64;
        const end = Math.min(data.length, start + ((k * 131) % 1500));
        assert.equal(crc32c(data, k * 0x9e3779b1 >>> 0, start, end), reference(data, k * 0x9e3779b1 >>> 0, start, end));
        // The same bytes through a view whose byteOffset is unaligned, and continued in two pieces.
        const view = data.subarray(start, end);
        const split = (k * 17) % (view.length + 1);
        assert.equal(crc32c(view.subarray(split), crc32c(view.subarray(0, split))), reference(view, 0, 0, view.length));
    }
});

test('bytes round-trip every field kind with dqlite padding', () => {
    const w = new ByteWriter(4);
    w.u8(7).pad8().u32(1).u32(0xffffffff).u64(2n ** 64n - 1n).u64(123).i64(-5n).f64(1.5);
    w.text('héllo').text('').text('1234567').blob(Buffer.from([1, 2, 3]));
    const bytes = w.finish();
    assert.equal(bytes.length % 8, 0);
    const r = new ByteReader(bytes);
    assert.equal(r.u8(), 7);
    r.align8();
    assert.equal(r.u32(), 1);
    assert.equal(r.u32(), 0xffffffff);
    assert.equal(r.u64(), 2n ** 64n - 1n);
    assert.equal(r.u64Number(), 123);
    assert.equal(r.i64(), -5n);
    assert.equal(r.f64(), 1.5);
    assert.equal(r.text(), 'héllo');
    assert.equal(r.text(), '');
    assert.equal(r.text(), '1234567');
    assert.deepEqual([...r.blob()], [1, 2, 3]);
    assert.equal(r.remaining, 0);
});

test('text encodings take pad8(len + 1) bytes', () => {
    assert.equal(new ByteWriter().text('1234567').length, 8);
    assert.equal(new ByteWriter().text('12345678').length, 16);
    assert.equal(new ByteWriter().text('').length, 8);
});

test('the reader rejects truncation, missing NUL and bad UTF-8 with DecodeError', () => {
    assert.throws(() => new ByteReader(Buffer.alloc(7)).u64(), DecodeError);
    assert.throws(() => new ByteReader(Buffer.from('abcdefgh')).text(), DecodeError);
    assert.throws(() => new ByteReader(Buffer.from([0xff, 0xfe, 0, 0, 0, 0, 0, 0])).text(), DecodeError);
    const big = Buffer.alloc(8, 0xff);
    assert.throws(() => new ByteReader(big).u64Number(), DecodeError);
    assert.throws(() => new ByteReader(Buffer.concat([Buffer.from([100, 0, 0, 0, 0, 0, 0, 0])])).blob(), DecodeError);
});

test('seeded random replays and forks independent streams', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const xs = Array.from({ length: 100 }, () => a.int(1000));
    const ys = Array.from({ length: 100 }, () => b.int(1000));
    assert.deepEqual(xs, ys);
    assert.notDeepEqual(new SeededRandom(43).int(1e9), new SeededRandom(42).int(1e9));
    assert.notEqual(a.fork('net').next32(), a.fork('disk').next32());
    for (let i = 0; i < 1000; i++) {
        const f = a.float();
        assert.ok(f >= 0 && f < 1);
    }
});

test('lifecycle allows only the documented transitions and closes once', async () => {
    const l = new Lifecycle('thing');
    l.moveTo('opening');
    l.moveTo('open');
    assert.throws(() => l.moveTo('idle'));
    let calls = 0;
    const p1 = l.close(async () => void calls++);
    const p2 = l.close(async () => void calls++);
    assert.equal(p1, p2);
    await p1;
    assert.equal(calls, 1);
    assert.equal(l.state, 'closed');
    assert.throws(() => l.assertOpen(), (e: unknown) => e instanceof TqliteError && e.code === 'ERR_CLOSED');
});

test('manual clock fires in order and a closed TimerSet fires nothing', () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const timers = new TimerSet(clock);
    timers.setTimer(20, () => fired.push('b'));
    timers.setTimer(10, () => fired.push('a'));
    const c = timers.setTimer(15, () => fired.push('cancelled'));
    c.cancel();
    clock.advance(25);
    assert.deepEqual(fired, ['a', 'b']);
    timers.setTimer(5, () => fired.push('late'));
    timers.close();
    timers.setTimer(1, () => fired.push('after close'));
    clock.advance(100);
    assert.deepEqual(fired, ['a', 'b']);
    assert.equal(clock.pendingCount, 0);
});

test('deferred settles once; errors carry stable codes', async () => {
    const d = new Deferred<number>();
    d.resolve(1);
    assert.throws(() => d.resolve(2));
    assert.equal(d.tryReject(new Error('x')), false);
    assert.equal(await d.promise, 1);
    const e = new NotLeaderError('not leader', { id: 1n, address: 'a' });
    assert.equal(e.code, 'ERR_NOT_LEADER');
    assert.ok(e instanceof TqliteError);
    assert.equal(e.leader?.address, 'a');
});
