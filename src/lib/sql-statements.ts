// Finds where SQL statements begin and end in a string of SQL text, the way SQLite's own
// tokenizer does, without SQLite: better-sqlite3 has no "tail" API, yet the wire protocol needs
// statement boundaries (PREPARE's tail offset, EXEC_SQL with several statements, the
// "nonempty statement tail" check). The rules are SQLite's lexical rules (strings, quoted
// identifiers, comments) plus the documented state machine of sqlite3_complete(), which knows
// that semicolons inside CREATE TRIGGER ... BEGIN ... END do not end the statement.

/** One statement: `start` is its first token, `end` is just past its `;` (or the end of input). */
export interface StatementSpan {
    readonly start: number;
    readonly end: number;
}

type Token = 'semi' | 'space' | 'other' | 'explain' | 'create' | 'temp' | 'trigger' | 'end';

// States of sqlite3_complete(): 0 before any statement, 1 at a statement start, 2 inside a normal
// statement, 3 after EXPLAIN, 4 after CREATE, 5 inside a trigger body, 6 after a `;` inside a
// trigger body, 7 after END inside a trigger body.
const NEXT: Record<Token, readonly number[]> = {
    //       0  1  2  3  4  5  6  7
    semi: [1, 1, 1, 1, 1, 6, 6, 1],
    space: [0, 1, 2, 3, 4, 5, 6, 7],
    other: [2, 2, 2, 3, 2, 5, 5, 5],
    explain: [3, 3, 2, 2, 2, 5, 5, 5],
    create: [4, 4, 2, 4, 2, 5, 5, 5],
    temp: [2, 2, 2, 2, 4, 5, 5, 5],
    trigger: [2, 2, 2, 2, 5, 5, 5, 5],
    end: [2, 2, 2, 2, 2, 5, 7, 5],
};

const KEYWORDS: Record<string, Token> = {
    EXPLAIN: 'explain',
    CREATE: 'create',
    TEMP: 'temp',
    TEMPORARY: 'temp',
    TRIGGER: 'trigger',
    END: 'end',
};

function isSpace(c: number): boolean {
    return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

function isIdentifierChar(c: number): boolean {
    return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
        || c === 0x5f || c === 0x24 || c >= 0x80;
}

/** Index just past a quoted token that starts at `i` and closes with `close` (doubled = escaped). */
function skipQuoted(sql: string, i: number, close: string, doubling: boolean): number {
    let j = i + 1;
    for (;;) {
        const k = sql.indexOf(close, j);
        if (k < 0) return sql.length;
        if (doubling && sql[k + 1] === close) {
            j = k + 2;
            continue;
        }
        return k + 1;
    }
}

/** Reads the token at `i`; returns its kind and the index just past it. */
function nextToken(sql: string, i: number): [Token, number] {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
        let j = i + 1;
        while (j < sql.length && isSpace(sql.charCodeAt(j))) j++;
        return ['space', j];
    }
    if (c === 0x3b) return ['semi', i + 1];
    if (c === 0x2d && sql[i + 1] === '-') {
        const k = sql.indexOf('\n', i + 2);
        return ['space', k < 0 ? sql.length : k + 1];
    }
    if (c === 0x2f && sql[i + 1] === '*') {
        const k = sql.indexOf('*/', i + 2);
        return ['space', k < 0 ? sql.length : k + 2];
    }
    if (c === 0x27) return ['other', skipQuoted(sql, i, "'", true)];
    if (c === 0x22) return ['other', skipQuoted(sql, i, '"', true)];
    if (c === 0x60) return ['other', skipQuoted(sql, i, '`', true)];
    if (c === 0x5b) return ['other', skipQuoted(sql, i, ']', false)];
    if (isIdentifierChar(c)) {
        let j = i + 1;
        while (j < sql.length && isIdentifierChar(sql.charCodeAt(j))) j++;
        const word = j - i <= 9 ? sql.slice(i, j).toUpperCase() : '';
        return [KEYWORDS[word] ?? 'other', j];
    }
    return ['other', i + 1];
}

/**
 * The first statement at or after `from`, skipping whitespace, comments and empty statements
 * (lone semicolons); undefined when the rest of the text holds no statement. A statement
 * without a final `;` runs to the end of the text, as it does for SQLite.
 */
export function firstStatement(sql: string, from = 0): StatementSpan | undefined {
    let state = 0;
    let start = -1;
    let i = from;
    while (i < sql.length) {
        const [token, next] = nextToken(sql, i);
        if (token === 'semi' && start >= 0 && state !== 5 && state !== 6) {
            return { start, end: next };
        }
        if (token !== 'space' && token !== 'semi' && start < 0) start = i;
        state = NEXT[token][state] as number;
        i = next;
    }
    return start < 0 ? undefined : { start, end: sql.length };
}

/** Every statement of the text, in order (empty statements are left out). */
export function splitStatements(sql: string): StatementSpan[] {
    const spans: StatementSpan[] = [];
    let from = 0;
    for (;;) {
        const span = firstStatement(sql, from);
        if (span === undefined) return spans;
        spans.push(span);
        from = span.end;
    }
}

/** True when the text holds at least one statement (not just whitespace, comments and `;`). */
export function hasStatement(sql: string, from = 0): boolean {
    return firstStatement(sql, from) !== undefined;
}

/**
 * The bind parameters of one statement by index, as SQLite numbers them: element i is the
 * name of parameter i + 1 (sqlite3_bind_parameter_name), or null for an anonymous `?` and for
 * an index no parameter uses. `?` takes the next index; `?NNN` is index NNN (raising the count
 * to NNN) and names it "?NNN" unless it already has a name; a named parameter (`:a`, `@a`,
 * `$a`) takes the next index the first time its name appears and the same index after that.
 * The length is sqlite3_bind_parameter_count().
 */
export function parameterNames(sql: string, span: StatementSpan = { start: 0, end: sql.length }): (string | null)[] {
    const names: (string | null)[] = [];
    const indexOf = new Map<string, number>();
    let i = span.start;
    while (i < span.end) {
        const c = sql.charCodeAt(i);
        const [, next] = nextToken(sql, i);
        if (c === 0x3f) {
            let j = i + 1;
            while (j < span.end && sql.charCodeAt(j) >= 0x30 && sql.charCodeAt(j) <= 0x39) j++;
            if (j === i + 1) {
                names.push(null);
            } else {
                const index = Number(sql.slice(i + 1, j));
                while (names.length < index) names.push(null);
                const name = sql.slice(i, j);
                if (names[index - 1] === null && !indexOf.has(name)) {
                    names[index - 1] = name;
                    indexOf.set(name, index);
                }
            }
            i = j;
            continue;
        }
        if (c === 0x3a || c === 0x40 || c === 0x24) {
            let j = i + 1;
            while (j < span.end && isIdentifierChar(sql.charCodeAt(j))) j++;
            if (j > i + 1) {
                const name = sql.slice(i, j);
                if (!indexOf.has(name)) {
                    names.push(name);
                    indexOf.set(name, names.length);
                }
                i = j;
                continue;
            }
        }
        i = next;
    }
    return names;
}

/** sqlite3_bind_parameter_count() of one statement (see parameterNames). */
export function parameterCount(sql: string, span: StatementSpan = { start: 0, end: sql.length }): number {
    return parameterNames(sql, span).length;
}

/** The UTF-8 byte offset of string index `index` in `text` (wire offsets count bytes). */
export function utf8Offset(text: string, index: number): number {
    return Buffer.byteLength(text.slice(0, index), 'utf8');
}
