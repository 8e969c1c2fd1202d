// Term and vote, durable before the node acts on them (Raft §3.8: persistent state). Two files,
// `metadata1` and `metadata2`, written alternately: version v goes to metadata1 when v is odd,
// metadata2 when even, so a crash while writing one never loses the other (dqlite's scheme,
// dqlite-notes.md §D.3). Load takes the higher version; equal versions are corruption.
//
// Each write is one 48-byte write at offset 0 (inside one sector, so old-or-new after a crash)
// followed by fdatasync. The first write of each file creates it, and a creation is durable only
// after fsyncDir.

import { StorageError } from '../lib/errors.js';
import type { FileSystem } from '../lib/fs.js';
import { joinPath } from '../lib/fs.js';
import type { HardState } from '../raft/types.js';
import { decodeMetadata, encodeMetadata } from './format.js';
import type { MetadataRecord } from './format.js';

export const METADATA_NAMES = ['metadata1', 'metadata2'] as const;

export interface LoadedMetadata {
    /** The current record, or undefined for a fresh node (term 0, no vote). */
    readonly current: MetadataRecord | undefined;
    /** Which of the two files exist with content (index 0 = metadata1). */
    readonly present: readonly [boolean, boolean];
}

/** `names` is the directory listing (so no file is probed for existence). */
export async function loadMetadata(fs: FileSystem, dir: string, names: readonly string[]): Promise<LoadedMetadata> {
    const records: (MetadataRecord | undefined)[] = [];
    const present: boolean[] = [];
    for (const name of METADATA_NAMES) {
        const bytes = names.includes(name) ? await fs.readFile(joinPath(dir, name)) : undefined;
        if (bytes === undefined) {
            records.push(undefined);
            present.push(false);
            continue;
        }
        const parsed = decodeMetadata(bytes);
        if (parsed.kind === 'corrupt') {
            throw new StorageError(`${name}: ${parsed.reason}`, 'ERR_STORAGE_CORRUPT');
        }
        // An empty file is a creation whose write never became durable: that version was never
        // acknowledged, and the file is rewritten (created again) by the next write.
        records.push(parsed.kind === 'ok' ? parsed.record : undefined);
        present.push(parsed.kind === 'ok');
    }
    const [a, b] = records;
    if (a !== undefined && a.version % 2 !== 1) {
        throw new StorageError('metadata1 holds an even version', 'ERR_STORAGE_CORRUPT');
    }
    if (b !== undefined && b.version % 2 !== 0) {
        throw new StorageError('metadata2 holds an odd version', 'ERR_STORAGE_CORRUPT');
    }
    let current: MetadataRecord | undefined;
    if (a !== undefined && b !== undefined) {
        if (a.version === b.version) throw new StorageError('metadata versions are equal', 'ERR_STORAGE_CORRUPT');
        current = a.version > b.version ? a : b;
    } else {
        current = a ?? b;
    }
    return { current, present: [present[0] === true, present[1] === true] };
}

/** Writes the next version. Resolves when it is durable. */
export async function writeMetadata(fs: FileSystem, dir: string, previous: LoadedMetadata['current'],
    present: boolean[], hardState: HardState): Promise<MetadataRecord> {
    const version = (previous?.version ?? 0) + 1;
    const which = version % 2 === 1 ? 0 : 1;
    const path = joinPath(dir, METADATA_NAMES[which]);
    const record: MetadataRecord = { version, hardState };
    const creating = !present[which];
    // 'replace' creates a missing file and truncates an empty leftover; an existing file of the
    // right size is overwritten in place (same size, so fdatasync need not touch metadata).
    const file = await fs.open(path, creating ? 'replace' : 'readWrite');
    try {
        await file.write(0, encodeMetadata(record));
        await file.datasync();
    } finally {
        await file.close();
    }
    if (creating) {
        await fs.fsyncDir(dir);
        present[which] = true;
    }
    return record;
}
