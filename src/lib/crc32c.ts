// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, slicing by one byte.
// Used for the log's batch checksums and snapshot checksums.

const TABLE = (() => {
    const table = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
        table[n] = c;
    }
    return table;
})();

/** Continues a CRC over `data`; start with crc = 0. */
export function crc32c(data: Uint8Array, crc = 0, start = 0, end = data.length): number {
    let c = ~crc;
    for (let i = start; i < end; i++) {
        c = (TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
    }
    return ~c >>> 0;
}
