// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8: eight 256-entry tables
// let the loop consume eight bytes per step (about twice the speed of the byte-at-a-time
// loop here). Used for the log's batch checksums, peer frames and snapshot checksums.

const TABLES = (() => {
    const tables = new Int32Array(8 * 256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
        tables[n] = c;
    }
    for (let n = 0; n < 256; n++) {
        let c = tables[n] as number;
        for (let t = 1; t < 8; t++) {
            c = (tables[c & 0xff] as number) ^ (c >>> 8);
            tables[t * 256 + n] = c;
        }
    }
    return tables;
})();

/** Continues a CRC over `data[start, end)`; start with crc = 0. */
export function crc32c(data: Uint8Array, crc = 0, start = 0, end = data.length): number {
    const t = TABLES;
    let c = ~crc;
    let i = start;
    for (; i + 8 <= end; i += 8) {
        const lo = c ^ ((data[i] as number) | ((data[i + 1] as number) << 8)
            | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24));
        c = (t[1792 + (lo & 0xff)] as number) ^ (t[1536 + ((lo >>> 8) & 0xff)] as number)
            ^ (t[1280 + ((lo >>> 16) & 0xff)] as number) ^ (t[1024 + (lo >>> 24)] as number)
            ^ (t[768 + (data[i + 4] as number)] as number) ^ (t[512 + (data[i + 5] as number)] as number)
            ^ (t[256 + (data[i + 6] as number)] as number) ^ (t[data[i + 7] as number] as number);
    }
    for (; i < end; i++) c = (t[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
    return ~c >>> 0;
}
