/**
 * Directory listings through the native addon (native/list_directory.c): a batch of names and
 * their lstat facts read on the thread pool with one fstatat(2) per entry relative to the open
 * directory, so the main thread pays one callback per batch and builds only the FileInfo objects.
 * Where the addon is not built, `DirectoryReader.open` returns null and LocalStorage lists with
 * Node's own calls.
 */
import { constants as fsConstants } from "node:fs";
import { constants as osConstants } from "node:os";
import { errnoError, nativeAddon } from "../native.js";

type Reader = object;

interface ListDirectoryAddon {
  openDirectory(path: Buffer): Reader;
  readBatch(
    reader: Reader,
    max: number,
    withFacts: boolean,
    done: (errno: number, names: Buffer, ends: Uint32Array, facts: Float64Array, end: boolean) => void,
  ): void;
  readBatchNow(reader: Reader, max: number, withFacts: boolean, budgetMs: number): [number, Buffer, Uint32Array, Float64Array, boolean];
  closeDirectory(reader: Reader): void;
}

const addon = nativeAddon<ListDirectoryAddon>();

/** Whether listings can go through the addon here. */
export const directoryReaderAvailable = addon !== null;

/** One batch: raw names back to back, where each ends, and (when asked for) 3 facts per entry. */
export class DirectoryBatch {
  constructor(
    private readonly names: Buffer,
    private readonly ends: Uint32Array,
    private readonly facts: Float64Array,
    /** The directory has no more entries. */
    readonly done: boolean,
  ) {}

  get length(): number {
    return this.ends.length;
  }

  /** Entry `i`'s name as latin1 (one character per byte: lossless; ASCII names are their own UTF-8). */
  latin1Name(i: number): string {
    return this.names.toString("latin1", i === 0 ? 0 : this.ends[i - 1], this.ends[i]);
  }

  /** Entry `i`'s name as raw bytes (a view, valid while the batch is). */
  rawName(i: number): Buffer {
    return this.names.subarray(i === 0 ? 0 : this.ends[i - 1], this.ends[i]);
  }

  /** lstat's st_mode of entry `i` (batches read with facts only). */
  mode(i: number): number {
    return this.facts[3 * i];
  }

  size(i: number): number {
    return this.facts[3 * i + 1];
  }

  mtimeMs(i: number): number {
    return this.facts[3 * i + 2];
  }

  isSymbolicLink(i: number): boolean {
    return (this.mode(i) & fsConstants.S_IFMT) === fsConstants.S_IFLNK;
  }
}

/** Reads one directory batch by batch; close() when done (not while a batch is being read). */
export class DirectoryReader {
  private constructor(
    private readonly native: ListDirectoryAddon,
    private readonly reader: Reader,
  ) {}

  /** A reader of the directory at `path` (nothing is opened before the first batch); null without the addon. */
  static open(path: string): DirectoryReader | null {
    return addon && new DirectoryReader(addon, addon.openDirectory(Buffer.from(path)));
  }

  /** Up to `max` entries ("." and ".." left out), with their lstat facts when `withFacts`. */
  read(max: number, withFacts: boolean): Promise<DirectoryBatch> {
    return new Promise((resolve, reject) =>
      this.native.readBatch(this.reader, max, withFacts, (errno, names, ends, facts, end) => {
        if (errno !== 0) reject(errnoError(errno, "scandir"));
        else resolve(new DirectoryBatch(names, ends, facts, end));
      }),
    );
  }

  /**
   * The same, read at once on this thread (at most 256 entries: list_directory.c's SPLIT_FROM);
   * throws fs's error. Null when it took longer than `budgetMs` (a cold directory on a slow disk):
   * nothing is returned and the next {@link read} starts again from the first entry.
   */
  readNow(max: number, withFacts: boolean, budgetMs: number): DirectoryBatch | null {
    const [errno, names, ends, facts, end] = this.native.readBatchNow(this.reader, max, withFacts, budgetMs);
    if (errno === osConstants.errno.ETIMEDOUT) return null;
    if (errno !== 0) throw errnoError(errno, "scandir");
    return new DirectoryBatch(names, ends, facts, end);
  }

  close(): void {
    this.native.closeDirectory(this.reader);
  }
}
