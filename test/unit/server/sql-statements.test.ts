// Goal: statement boundaries and parameter counts found by src/lib/sql-statements.ts agree with
// SQLite's own (the gateway relies on them for "nonempty statement tail", EXEC_SQL with several
// statements and QUERY_SQL). Method: hand-picked cases for strings, identifiers, comments and
// triggers; then a seeded random check against better-sqlite3, which refuses exactly the texts
// that hold more than one statement and counts placeholders with sqlite3_bind_parameter_count.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import {
    firstStatement, hasStatement, parameterCount, parameterNames, splitStatements, utf8Offset,
} from '../../../src/lib/sql-statements.js';

function pieces(sql: string): string[] {
    return splitStatements(sql).map((s) => sql.slice(s.start, s.end));
}

test('splits on semicolons outside strings, identifiers and comments', () => {
    assert.deepEqual(pieces('SELECT 1; SELECT 2'), ['SELECT 1;', 'SELECT 2']);
    assert.deepEqual(pieces("SELECT 'a;b'; SELECT \"x;\"\"y\""), ["SELECT 'a;b';", 'SELECT "x;""y"']);
    assert.deepEqual(pieces('SELECT [a;b], `c;d`; -- x;y\nSELECT 2 /* ; */;'), [
        'SELECT [a;b], `c;d`;', 'SELECT 2 /* ; */;',
    ]);
    assert.deepEqual(pieces("SELECT 'it''s;'"), ["SELECT 'it''s;'"]);
    assert.deepEqual(pieces(';; ;SELECT 1;;'), ['SELECT 1;']);
});

test('empty text, whitespace, comments and lone semicolons hold no statement', () => {
    for (const sql of ['', '   ', '\n\t', '-- only a comment', '/* c */ ; ;', '/* unterminated']) {
        assert.equal(firstStatement(sql), undefined, JSON.stringify(sql));
        assert.equal(hasStatement(sql), false);
    }
    assert.equal(hasStatement('x'), true);
});

test('semicolons inside CREATE TRIGGER ... BEGIN ... END stay in the statement', () => {
    const trigger = 'CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); '
        + 'UPDATE u SET x = 2; END;';
    assert.deepEqual(pieces(`${trigger} SELECT 1`), [trigger, 'SELECT 1']);
    assert.deepEqual(pieces('EXPLAIN CREATE TRIGGER a BEGIN SELECT 1; END; SELECT 2'), [
        'EXPLAIN CREATE TRIGGER a BEGIN SELECT 1; END;', 'SELECT 2',
    ]);
    // END as an ordinary word (CASE ... END) in a normal statement changes nothing.
    assert.deepEqual(pieces('SELECT CASE WHEN 1 THEN 2 END; SELECT 3'), ['SELECT CASE WHEN 1 THEN 2 END;', 'SELECT 3']);
});

test('parameter counts follow sqlite3_bind_parameter_count', () => {
    assert.equal(parameterCount('SELECT 1'), 0);
    assert.equal(parameterCount('SELECT ?, ?, ?'), 3);
    assert.equal(parameterCount('SELECT ?5, ?'), 6);
    assert.equal(parameterCount('SELECT :a, @b, $c, :a'), 3);
    assert.equal(parameterCount("SELECT '?', \"?\" -- ?\n, ?"), 1);
    assert.deepEqual(parameterNames('SELECT ?2, ?'), [null, '?2', null]);
    assert.deepEqual(parameterNames('SELECT :a, ?, :a, $b, ?5, ?2'), [':a', '?2', '$b', null, '?5']);
    assert.deepEqual(parameterNames('SELECT ?1, :a, ?1'), ['?1', ':a']);
});

test('utf8Offset counts bytes', () => {
    assert.equal(utf8Offset('héllo; x', 6), 7);
});

test('random texts: boundaries and counts agree with SQLite (seeded)', () => {
    const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
    console.log(`seed ${seed}`);
    let state = seed;
    const random = (n: number): number => {
        state = (state * 1103515245 + 12345) % 2147483648;
        return state % n;
    };
    const statements = ['SELECT 1', "SELECT 'a;'", 'SELECT 1 AS "b;"', 'SELECT ?', 'SELECT ?2, ?',
        'SELECT 1 AS [;]', "SELECT x'00'", 'SELECT 1 AS `;`'];
    const fillers = ['', ' ', '-- c;\n', '/* ; */', ';', '\n'];
    const db = new Database(':memory:');
    try {
        for (let i = 0; i < 2000; i++) {
            let sql = '';
            const count = 1 + random(4);
            for (let j = 0; j < count; j++) {
                sql += (fillers[random(fillers.length)] as string) + (statements[random(statements.length)] as string);
                sql += (j < count - 1 || random(2) === 0 ? ';' : '') + (fillers[random(fillers.length)] as string);
            }
            const spans = splitStatements(sql);
            let prepared: Database.Statement | undefined;
            let refused = '';
            try {
                prepared = db.prepare(sql);
            } catch (error) {
                refused = (error as Error).message;
            }
            if (spans.length === 0) {
                assert.match(refused, /no statements/, `seed ${seed}: ${JSON.stringify(sql)}`);
            } else if (spans.length > 1) {
                assert.match(refused, /more than one statement/, `seed ${seed}: ${JSON.stringify(sql)}`);
            } else {
                assert.ok(prepared !== undefined, `seed ${seed}: ${JSON.stringify(sql)} ${refused}`);
            }
            for (const span of spans) {
                const one = db.prepare(sql.slice(span.start, span.end));
                const counted = parameterCount(sql, span);
                // Binding exactly `counted` values succeeds only if the count is right. As the
                // worker does (src/fsm/session.ts), parameters with a name (?2) are bound from an
                // object, the anonymous ones (and unused indexes) from the arguments in order.
                const names = parameterNames(sql, span);
                assert.equal(names.length, counted);
                const args = (extra: number): unknown[] => {
                    const named = Object.fromEntries(names.flatMap((n) => (n === null ? [] : [[n.slice(1), 1]])));
                    const positional = names.filter((n) => n === null).map(() => 1);
                    return [...positional, ...new Array(extra).fill(1),
                        ...(Object.keys(named).length > 0 ? [named] : [])];
                };
                one.safeIntegers(true);
                assert.doesNotThrow(() => one.reader ? one.all(...args(0)) : undefined,
                    `seed ${seed}: ${JSON.stringify(sql)}`);
                assert.throws(() => one.all(...args(1)), /Too many parameter/);
            }
        }
    } finally {
        db.close();
    }
});
