// tqlite's dqlite wire protocol codec (wire-protocol.md is the contract). Pure: no sockets, no
// timers, no files; it imports only src/lib. Every decode failure is a ProtocolError.
//
// API summary (additive changes only from here on):
//
//   Framing (frame.ts)
//     encodeHandshake(version = PROTOCOL_VERSION): Buffer           the client's first 8 bytes
//     new FrameSplitter({ bodyBytesMax?, handshake? })              bytes in, frames out
//       .push(chunk)   .handshake(): bigint | undefined   .next(): Frame | undefined
//       .takeBuffered(): Buffer   .bufferedBytes
//       next() throws ProtocolError: ERR_PROTOCOL for words = 0, ERR_PROTOCOL_FRAME_TOO_LARGE for
//       a declared body over bodyBytesMax (checked from the header, before allocating).
//     Frame = { type, schema, extra, body }
//     encodeFrame({ type, schema, body, extra? }): Buffer           a raw message (tests, tools)
//
//   Messages (messages.ts): one schema table, REQUEST_SCHEMA / RESPONSE_SCHEMA, from which the
//   types are derived. Request and Response are unions discriminated by `kind`:
//     requests:  leader client heartbeat open prepare exec query finalize execSql querySql
//                interrupt connect add assign remove dump cluster transfer describe weight
//     responses: failure server serverLegacy welcome servers db stmt result rows empty files
//                metadata
//     encodeRequest(request, { schema? }): Buffer     whole message; schema 1 is chosen
//                                                      automatically above 255 parameters
//     encodeResponse(response): Buffer                 STMT with tailOffset → schema 1
//     decodeRequest(frame): Request
//     decodeResponse(frame, { legacy?, clusterFormat? }): Response
//     new RowsWriter(columns).add(row) … .finish(done): Buffer     incremental ROWS for servers
//     RequestOf<'exec'>, ResponseOf<'rows'>, ServerInfo, FileEntry
//
//   Values (values.ts): WireValue = { type: ValueType.x, value } with
//     integer → bigint, float → number, text → string, blob → Uint8Array (decoded: a Buffer copy),
//     null → null, unixTime → bigint (seconds), iso8601 → string, boolean → boolean.
//
//   Number policy: node ids, db ids of u64 fields, formats, weights, failure domains, last insert
//   id (signed) and rows affected are bigint (exact). Counts, sizes, offsets, roles, the FAILURE
//   code and the WELCOME timeout are numbers; a value above 2^53 there is a ProtocolError. u32
//   fields (EXEC/QUERY/FINALIZE db and statement ids, DB id) are numbers.
//
//   Rendering (describe.ts): describeMessage(message) → 'execSql db=0 sql="…" params=[integer:42]',
//   describeValue(value) → 'text:"a"'. For logs and test expectations.
//
//   Constants (constants.ts): PROTOCOL_VERSION, PROTOCOL_VERSION_LEGACY, RequestType,
//   ResponseType, ValueType, RoleCode, FailureCode, HEADER_BYTES, DEFAULT_BODY_BYTES_MAX, …

export {
    DEFAULT_BODY_BYTES_MAX, FailureCode, HEADER_BYTES, PARAMS_SCHEMA0_MAX, PROTOCOL_VERSION,
    PROTOCOL_VERSION_LEGACY, ROWS_DONE_BYTE, ROWS_PART_BYTE, RequestType, ResponseType, RoleCode, ValueType,
    WORD_BYTES, WORDS_MAX,
} from './constants.js';
export type { ValueTypeCode } from './constants.js';
export { FrameSplitter, encodeFrame, encodeHandshake } from './frame.js';
export type { Frame, FrameSplitterOptions } from './frame.js';
export {
    REQUEST_SCHEMA, RESPONSE_SCHEMA, RowsWriter, decodeRequest, decodeResponse, encodeRequest, encodeResponse,
} from './messages.js';
export type {
    DecodeResponseOptions, EncodeRequestOptions, FileEntry, Request, RequestKind, RequestOf, Response,
    ResponseKind, ResponseOf, ServerInfo,
} from './messages.js';
export { describeMessage, describeValue } from './describe.js';
export { isValueType } from './values.js';
export type { WireValue } from './values.js';
