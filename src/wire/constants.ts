// Numeric constants of the dqlite client wire protocol (wire-protocol.md §1, §2, §4.1, §5, §6,
// §6.8, §7, §8.2). Names follow the spec; every value here appears on the wire.

/** The 8-byte handshake word of protocol version 1 (§1). */
export const PROTOCOL_VERSION = 1n;
/** The pre-1.0 handshake word; LEADER is then answered with the legacy SERVER form (§1, §6.2). */
export const PROTOCOL_VERSION_LEGACY = 0x86104dd760433fe5n;

/** Every message starts with an 8-byte header: u32 words, u8 type, u8 schema, u16 extra (§2). */
export const HEADER_BYTES = 8;
/** The body length field counts 8-byte words. */
export const WORD_BYTES = 8;
/** The largest body the header can describe: (2^32 − 1) words. */
export const WORDS_MAX = 0xffffffff;
/** The default limit of one message body, in bytes; configurable per splitter. */
export const DEFAULT_BODY_BYTES_MAX = 128 * 1024 * 1024;

/** Request type codes (§5). */
export const RequestType = {
    leader: 0,
    client: 1,
    heartbeat: 2,
    open: 3,
    prepare: 4,
    exec: 5,
    query: 6,
    finalize: 7,
    execSql: 8,
    querySql: 9,
    interrupt: 10,
    connect: 11,
    add: 12,
    assign: 13,
    remove: 14,
    dump: 15,
    cluster: 16,
    transfer: 17,
    describe: 18,
    weight: 19,
} as const;

/** Response type codes (§6). SERVER and its legacy form share code 1. */
export const ResponseType = {
    failure: 0,
    server: 1,
    welcome: 2,
    servers: 3,
    db: 4,
    stmt: 5,
    result: 6,
    rows: 7,
    empty: 8,
    files: 9,
    metadata: 10,
} as const;

/** Value type codes used in parameter and row tuples (§4.1). */
export const ValueType = {
    integer: 1,
    float: 2,
    text: 3,
    blob: 4,
    null: 5,
    unixTime: 9,
    iso8601: 10,
    boolean: 11,
} as const;

export type ValueTypeCode = (typeof ValueType)[keyof typeof ValueType];

/** Node role codes as they appear on the wire (§8.2); raft's own numbers differ. */
export const RoleCode = {
    voter: 0,
    standby: 1,
    spare: 2,
} as const;

/** End-of-batch markers of ROWS messages (§6.8): 8 bytes of 0xEE (PART) or 0xFF (DONE). */
export const ROWS_PART_BYTE = 0xee;
export const ROWS_DONE_BYTE = 0xff;

/** Schema 0 parameter tuples carry a u8 count; more parameters need schema 1 (§4.2). */
export const PARAMS_SCHEMA0_MAX = 255;

/** FAILURE codes with a meaning for clients (§7). */
export const FailureCode = {
    emptyStatement: 0,
    error: 1,
    busy: 5,
    notFound: 12,
    protocol: 15,
    range: 25,
    row: 100,
    dqliteProto: 1001,
    dqliteNotFound: 1002,
    dqliteParse: 1005,
    notLeader: 10250,
    leadershipLost: 10506,
    notLeaderLegacy: 8202,
    leadershipLostLegacy: 8458,
} as const;
