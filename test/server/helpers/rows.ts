// Reads a whole query result (every ROWS message up to DONE) with src/wire's decoder.

import { decodeResponse } from '../../../src/wire/index.js';
import type { ResponseOf } from '../../../src/wire/index.js';
import type { Message, RawClient } from './raw-client.js';

export interface RowsResult {
    readonly columns: readonly string[];
    /** Values as the wire decoder gives them (bigint, number, string, Buffer, null, boolean). */
    readonly rows: unknown[][];
    /** Wire type codes per row. */
    readonly types: number[][];
    /** ROWS messages received and their sizes in bytes (header included). */
    readonly messages: number;
    readonly sizes: number[];
}

/** Decodes one ROWS message; `part` is true when more batches follow. */
export function rowsMessage(message: Message): ResponseOf<'rows'> & { part: boolean } {
    const response = decodeResponse({ type: message.type, schema: message.schema, extra: 0, body: message.body });
    if (response.kind !== 'rows') {
        const detail = response.kind === 'failure' ? ` ${response.code} ${response.message}` : '';
        throw new Error(`expected ROWS, got ${response.kind}${detail}`);
    }
    return { ...response, part: !response.done };
}

/** Reads ROWS messages starting with `first` until DONE. */
export async function readRows(client: RawClient, first: Message): Promise<RowsResult> {
    const rows: unknown[][] = [];
    const types: number[][] = [];
    const sizes: number[] = [];
    let columns: readonly string[] = [];
    let message = first;
    for (;;) {
        const batch = rowsMessage(message);
        columns = batch.columns;
        sizes.push(8 + message.body.length);
        for (const row of batch.rows) {
            rows.push(row.map((v) => v.value));
            types.push(row.map((v) => v.type));
        }
        if (batch.done) break;
        message = await client.read();
    }
    return { columns, rows, types, messages: sizes.length, sizes };
}
