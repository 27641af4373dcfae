/**
 * The local-disk Storage: one account's root directory on the server's own file system.
 *
 * Confinement: a virtual path maps to `root + path`, and before every operation the real location the
 * kernel would act on is computed (following symlinks, including dangling ones) and must lie inside the
 * root. A symlink leading outside the root makes the operation fail with `permission`; in a listing such
 * an entry (and a dangling one) is reported as type `link` with size 0 so that one bad link cannot break
 * the whole listing. FTP clients cannot create symlinks, but they can move them (and directories that
 * hold relative ones) with RNFR/RNTO: on Linux the operation then goes through what the check found,
 * opened and its place asked of the kernel (see pinned-paths.ts), so no rename in between can send it
 * outside. The quota's usage walk still goes by path: a race there can only miscount.
 */
import { randomBytes } from "node:crypto";
import {
  constants as fsConstants,
  createReadStream,
  createWriteStream,
  closeSync,
  fsync,
  lstatSync,
  fstat as fstatCallback,
  open as openCallback,
  read as readCallback,
  type Dir,
  type Dirent,
  type Stats,
} from "node:fs";
import {
  type FileHandle,
  lstat,
  open,
  opendir,
  readlink,
  realpath,
  stat,
  unlink,
} from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import type { Logger } from "../observe/logger.js";
import {
  StorageError,
  type EntryType,
  type SpecialKind,
  type FileInfo,
  type FileReadable,
  type Storage,
  type StorageCapabilities,
  type StorageErrorCode,
  type StorageFactory,
  type UploadReadable,
  type Usage,
  type WriteOptions,
} from "./types.js";
import { DirectoryReader, directoryReaderAvailable, type DirectoryBatch } from "./directory-reader.js";
import { SyncPacing } from "../sync-pacing.js";
import { MetadataCalls } from "./metadata-calls.js";
import { holdUploadLock, lockedByAnUpload } from "./upload-lock.js";
import { pinning, placeOf, referenceFlags, throughDescriptor } from "./pinned-paths.js";
import { resolveVirtualPath, virtualBasename } from "./virtual-path.js";

/** Directory entries read per readdir call and per listing batch: bounds listing memory whatever the directory's size. */
const LIST_BUFFER_SIZE = 256;
/** The same through the native reader, whose batch costs one thread-pool trip (1,024 entries: ~100 KB). */
const NATIVE_LIST_BATCH = 1024;
/**
 * A native listing's first batch is read at once on the event loop while the medium is fast (~100
 * µs for this many cached entries on tmpfs), so a small directory's listing makes no pool trip, which
 * costs more latency than its fstatat calls (~100 µs, measured from the client).
 */
const NATIVE_LIST_FIRST_BATCH = 64;
/** ...unless it takes longer than this (a cold directory on a slow disk): then the pool reads it all. */
const NATIVE_LIST_FIRST_BUDGET_MS = 1;
/**
 * A listing reads and stats its entries synchronously while the medium answers fast (dentries and
 * inodes in the page cache: a few µs an entry), yielding to the event loop between batches; one
 * promise and one thread-pool hop per entry was most of a large listing's cost. Once a batch has
 * spent this many ms, the rest of its entries and the next batch go through the thread pool, so a
 * slow disk blocks the node for about this long (plus one entry) per attempt. The synchronous way is
 * tried again after 1, 2, 4 … {@link MAX_POOL_BATCHES} pool batches: a process that was merely
 * descheduled (a busy machine) or still compiling its code costs a batch through the pool, not the
 * whole listing.
 */
const SYNC_BATCH_BUDGET_MS = 2;
/** Entries between two looks at the clock in a synchronous batch (a look costs ~60 ns). */
const SYNC_CLOCK_STRIDE = 8;
/** At most this many thread-pool batches between two synchronous attempts while the medium stays slow. */
const MAX_POOL_BATCHES = 64;
/** Large chunks keep the per-chunk overhead small on fast data connections. */
const STREAM_CHUNK_SIZE = 256 * 1024;
/**
 * How much an upload may buffer ahead of the disk. Each write goes through the thread pool; a
 * larger buffer lets one writev carry many of the socket's 64 KiB chunks (measured: 256 KiB gave
 * ~0.3 GB/s to tmpfs, 1 MiB ~0.7 GB/s). Bounded, so a slow disk costs at most this per upload.
 */
const WRITE_BUFFER_SIZE = 1024 * 1024;
/** The kernel's own limit (Linux MAXSYMLINKS), so our resolution gives up where open() would. */
const MAX_SYMLINK_HOPS = 40;

/**
 * Names starting with this belong to the server: the temporary files of atomic uploads in progress
 * (`.edgeftp-upload-<random>-<name>`). They are hidden from listings and stat, and a client path with
 * a segment starting with it is refused (`invalid-path`), so a client can neither see, create, read
 * nor clobber one. Leftovers of a killed process are removed by {@link removeLeftoverUploads}.
 */
export const RESERVED_PREFIX = ".edgeftp-upload-";
const RESERVED_PREFIX_BYTES = Buffer.from(RESERVED_PREFIX);
const fsyncAsync = promisify(fsync);
const openAsync = promisify(openCallback);
const fstatAsync = promisify(fstatCallback);

/** Linux NAME_MAX: the temporary name keeps only as much of the target's name as fits. */
const NAME_MAX_BYTES = 255;
/** The real paths of this process's uploads in progress: a leftover cleanup never touches them. */
const liveUploads = new Set<string>();

/** True when a segment of the (normalised) virtual path is a reserved name. */
export function isReservedPath(vpath: string): boolean {
  return vpath.split("/").some((segment) => segment.startsWith(RESERVED_PREFIX));
}

function isReservedName(raw: Buffer): boolean {
  return raw.length >= RESERVED_PREFIX_BYTES.length && raw.subarray(0, RESERVED_PREFIX_BYTES.length).equals(RESERVED_PREFIX_BYTES);
}

/**
 * Unique temporary names without a random draw per upload (randomBytes costs ~15 µs, a tenth of a
 * small overwrite): a random tag drawn once per process, which keeps nodes sharing a storage apart,
 * and a counter. The file is created with O_EXCL anyway.
 */
const PROCESS_TAG = randomBytes(6).toString("hex");
let temporaryCount = 0;

/** `.edgeftp-upload-<12 hex>.<counter>-<as much of name as fits in NAME_MAX bytes>`. */
function temporaryName(name: string): string {
  const head = `${RESERVED_PREFIX}${PROCESS_TAG}.${(temporaryCount++).toString(36)}-`;
  let room = NAME_MAX_BYTES - Buffer.byteLength(head);
  let kept = "";
  for (const char of name) {
    room -= Buffer.byteLength(char);
    if (room < 0) break;
    kept += char;
  }
  return head + kept;
}

/**
 * The read buffer for a file of `remaining` bytes: no larger than the file (a 4 KiB file must not
 * cost a 256 KiB allocation), and large for large files (fewer reads and socket writes per byte).
 */
function readChunkSize(remaining: number): number {
  if (remaining >= 16 * STREAM_CHUNK_SIZE) return 4 * STREAM_CHUNK_SIZE;
  return Math.max(16 * 1024, Math.min(remaining, STREAM_CHUNK_SIZE));
}

/**
 * Writes all of `source` into the open file `fd` from `position` (undefined: at the file's own
 * position, e.g. O_APPEND) and closes it, on every path; resolves with the bytes written. A source
 * that can move its bytes into the file itself (through the kernel, see {@link UploadReadable})
 * does so, and the descriptor is closed through `meta` (at once on a fast disk); any other (or one
 * that finds it cannot after all) is piped into a write stream that owns the descriptor. With
 * `durable`, the data is fsync'ed before the close. `source` is destroyed on failure.
 */
async function fill(fd: number, source: UploadReadable, position: number | undefined, durable: boolean, meta: MetadataCalls): Promise<number> {
  if (source.copyInto && position !== undefined) {
    let bytes: number | null;
    try {
      bytes = await source.copyInto({ fd, position });
      if (bytes !== null && durable) await fsyncAsync(fd);
    } catch (err) {
      source.destroy();
      await meta.close(fd).catch(() => undefined);
      throw err;
    }
    if (bytes !== null) {
      await meta.close(fd);
      return bytes;
    }
  }
  const sink = createWriteStream("", {
    fd,
    start: position,
    highWaterMark: WRITE_BUFFER_SIZE,
    // fsync before the stream closes the descriptor (Node >= 20.10): resolving promises durable data.
    flush: durable,
  });
  try {
    // On success pipeline settles after the stream has flushed and closed the descriptor.
    await pipeline(source, sink);
  } catch (err) {
    // On failure it may settle first: wait for the close, so that a partial file the caller
    // removes next is really let go of.
    if (!sink.closed) await new Promise<void>((resolve) => sink.once("close", () => resolve()));
    throw err;
  }
  return sink.bytesWritten;
}

/** fsync of a directory, so a rename in it survives a power loss. Best effort: not every file system allows it. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // EINVAL/EISDIR on file systems without directory fsync: the rename is done, durability is the medium's.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

const CODE_BY_ERRNO: ReadonlyMap<string, StorageErrorCode> = new Map([
  ["ENOENT", "not-found"],
  ["EEXIST", "exists"],
  ["ENOTDIR", "not-dir"],
  ["EISDIR", "is-dir"],
  ["ENOTEMPTY", "not-empty"],
  ["EACCES", "permission"],
  ["EPERM", "permission"],
  ["EROFS", "permission"],
  ["ENOSPC", "no-space"],
  ["EDQUOT", "no-space"],
  ["ENAMETOOLONG", "invalid-path"],
  // rename(2) across file systems (a mount inside a home): a permanent refusal, not a 451 that
  // clients such as lftp retry for ever. EBUSY: a mount point renamed or removed.
  ["EXDEV", "unsupported"],
  ["EBUSY", "permission"],
  // rename(2) of a directory into itself or below it.
  ["EINVAL", "invalid-path"],
  // A symlink loop, or (O_NOFOLLOW) a name that became a symlink since it was checked.
  ["ELOOP", "not-found"],
  // open(2) of a FIFO without a reader (O_NONBLOCK) or of a unix socket: nothing to read or write.
  ["ENXIO", "permission"],
]);

const MESSAGE_BY_CODE: Readonly<Record<StorageErrorCode, string>> = {
  "not-found": "No such file or directory",
  exists: "File exists",
  "not-dir": "Not a directory",
  "is-dir": "Is a directory",
  "not-empty": "Directory not empty",
  permission: "Permission denied",
  "no-space": "Insufficient storage space",
  "invalid-path": "Invalid path",
  unsupported: "Operation not supported",
  io: "I/O error",
};

/** Decodes names lossily: a non-UTF-8 name becomes U+FFFD characters instead of failing the listing. */
const NAME_DECODER = new TextDecoder("utf-8");
/** A name read as latin1 that holds a byte above 0x7f: not its own UTF-8 (see `LocalStorage.readBatch`). */
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * Turns any error met while serving `subject` into the StorageError a client may see.
 *
 * This is the only place errno codes are interpreted. The message names the virtual path only; the
 * original error (which carries the real path) is kept as `cause` for the logs.
 *
 * @param err - Whatever was thrown (a StorageError passes through unchanged).
 * @param subject - The virtual path (or `from -> to` pair) the operation was about.
 */
export function toStorageError(err: unknown, subject: string): StorageError {
  if (err instanceof StorageError) return err;
  const errno = (err as NodeJS.ErrnoException | null)?.code;
  const code = (errno !== undefined && CODE_BY_ERRNO.get(errno)) || "io";
  return new StorageError(code, `${MESSAGE_BY_CODE[code]}: ${subject}`, { cause: err });
}

/** A path through a reserved name (an upload in progress) is shown to no one. */
function isHidden(vpath: string): boolean {
  return isReservedPath(resolveVirtualPath("/", vpath));
}

function refuse(code: StorageErrorCode, subject: string): StorageError {
  return new StorageError(code, `${MESSAGE_BY_CODE[code]}: ${subject}`);
}

/**
 * Refuses what an opened path turned out to be unless it is a regular file: a directory (Linux lets
 * open(2) for reading succeed on one; the failure would only come with the first read) is `is-dir`,
 * a FIFO, a socket or a device an operator left in a home is no file to send or fill: `permission`.
 */
function refuseUnlessFile(info: Stats, vpath: string): void {
  if (info.isDirectory()) throw refuse("is-dir", vpath);
  if (!info.isFile()) throw refuse("permission", vpath);
}

function entryType(st: Stats): EntryType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "link";
  return "other";
}

/** ls's type letter of a file format that is neither a file, a directory nor a link. */
const SPECIAL_BY_FORMAT: ReadonlyMap<number, SpecialKind> = new Map([
  [fsConstants.S_IFIFO, "p"],
  [fsConstants.S_IFSOCK, "s"],
  [fsConstants.S_IFCHR, "c"],
  [fsConstants.S_IFBLK, "b"],
]);

function toFileInfo(name: string, st: Stats): FileInfo {
  const type = entryType(st);
  const info: FileInfo = { name, type, size: st.size, mtime: st.mtime, mode: st.mode & 0o777 };
  if (type === "other") info.special = SPECIAL_BY_FORMAT.get(st.mode & fsConstants.S_IFMT);
  return info;
}

/** The same from the bare lstat facts a native directory batch carries. */
function fileInfoFromMode(name: string, mode: number, size: number, mtimeMs: number): FileInfo {
  const format = mode & fsConstants.S_IFMT;
  const type: EntryType =
    format === fsConstants.S_IFREG ? "file" : format === fsConstants.S_IFDIR ? "dir" : format === fsConstants.S_IFLNK ? "link" : "other";
  // Rounded as Node rounds Stats.mtimeMs into Stats.mtime.
  const info: FileInfo = { name, type, size, mtime: new Date(Math.round(mtimeMs)), mode: mode & 0o777 };
  if (type === "other") info.special = SPECIAL_BY_FORMAT.get(format);
  return info;
}

/**
 * A native batch's names for display, reserved names left out, with the index of each in the
 * batch: ASCII names as read, any other decoded lossily (as {@link LocalStorage.readNames} does).
 */
function namesOf(batch: DirectoryBatch): { names: string[]; indexes: number[] } {
  const names: string[] = [];
  const indexes: number[] = [];
  for (let i = 0; i < batch.length; i++) {
    const raw = batch.latin1Name(i);
    if (raw.startsWith(RESERVED_PREFIX)) continue;
    names.push(NON_ASCII.test(raw) ? NAME_DECODER.decode(batch.rawName(i)) : raw);
    indexes.push(i);
  }
  return { names, indexes };
}

/** Names read from a directory, and the real paths to stat them by (strings, or bytes when not ASCII). */
interface NamedEntries {
  names: string[];
  paths: Array<string | Buffer>;
  /** The directory has no more entries. */
  done: boolean;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function nullIfMissing(err: unknown): null {
  if (isMissing(err)) return null;
  throw err;
}

/** Whether anything is at `p` (not following a final symlink); an error other than absence counts as yes. */
async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    return !isMissing(err);
  }
}

/**
 * The real path the kernel would act on for `p`: symlinks followed (dangling ones too, since writing
 * through one creates its target), components that do not exist yet appended as they are. A link's
 * target is walked one component at a time, as the kernel walks it: in `l/../x` the `..` climbs from
 * where the link `l` leads, not from where `l` is (a textual `path.resolve` would say the latter).
 */
async function resolveReal(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  // Components still to walk, the next one last; `real` is a real path throughout.
  const pending = components(p);
  let real = path.parse(p).root;
  let hops = 0;
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (name === "..") {
      real = path.dirname(real);
      continue;
    }
    const next = path.join(real, name);
    let target: string;
    try {
      target = await readlink(next);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EINVAL") {
        real = next; // there, and not a symlink
        continue;
      }
      if (!isMissing(err)) throw err;
      // Nothing there (yet): the rest is where a write would go, though the kernel stops here.
      return path.join(next, ...pending.reverse());
    }
    if (++hops > MAX_SYMLINK_HOPS) throw Object.assign(new Error("Too many levels of symbolic links"), { code: "ELOOP" });
    if (path.isAbsolute(target)) real = path.parse(target).root;
    pending.push(...components(target));
  }
  return real;
}

/** The components of a path to walk, the first one last ("." and empty ones left out). */
function components(p: string): string[] {
  return p
    .split(path.sep)
    .filter((c) => c !== "" && c !== ".")
    .reverse();
}

/** What {@link LocalStorage.lstatBelowRoot} answers when a segment is a symlink: the full resolution must decide. */
const SYMLINK_MET = Symbol("symlink met");

/** Where an operation through a final symlink acts: see {@link LocalStorage.inspect}. */
interface Target {
  /** `root + path`: what the operation's system call is given. */
  real: string;
  /** What the kernel acts on, symlinks followed (dangling ones too): inside the root. */
  resolved: string;
  /**
   * What is at `resolved`, from an lstat of a name that is not a symlink (so the same as a stat);
   * null: nothing there; undefined: not looked at (the name is a symlink, or its directory is missing).
   */
  entry: Stats | null | undefined;
}

/** A checked path pinned for a call (see {@link LocalStorage.pin}). */
interface Pin {
  /** What the call is given: `/proc/self/fd/N`, `/proc/self/fd/N/name` when `named`, or the checked path itself. */
  path: string;
  /** An entry named in its pinned directory (lstat sees the entry itself), not the pinned object. */
  named: boolean;
  release(): Promise<void>;
}

const NOTHING_TO_RELEASE = async (): Promise<void> => {};
/** Who owns what this process creates (before a set-group-ID directory has its say): an overwrite's owner is given back only when it differs. */
const PROCESS_UID = process.geteuid?.() ?? -1;
const PROCESS_GID = process.getegid?.() ?? -1;

/** open(2) flags for Node's "w", "a" and "r+", and O_NOFOLLOW: an upload's open where no symlink was found. */
const OPEN_FLAGS: Readonly<Record<string, number>> = {
  w: fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC,
  a: fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND,
  "r+": fsConstants.O_RDWR,
};

/** A Storage confined to one directory of the local file system. */
export class LocalStorage implements Storage {
  /** Everything is supported on a local disk. */
  readonly capabilities: StorageCapabilities = {
    writeAtOffset: true,
    append: true,
    setModifiedTime: true,
    chmod: true,
  };

  private readonly rootPrefix: string;
  private readonly meta: MetadataCalls;
  private readonly syncBudgetMs: number;
  /** Whether listings go through the native addon (built, and not turned off for a test). */
  private readonly nativeListing: boolean;
  /**
   * The calls a download's read stream makes on its descriptor: reads on the thread pool, the close
   * through the metadata calls (at once for a small file on a fast disk: most downloads are sent by
   * the kernel and never read through the stream, which then only closes the descriptor; a large
   * file's close goes to the pool, as it frees the file when it was deleted or replaced meanwhile).
   */
  private readonly streamCalls = {
    open: openCallback,
    read: readCallback,
    close: (fd: number, done: (err: unknown) => void) => void this.meta.close(fd).then(() => done(null), done),
  };

  /**
   * @param root - The account's root: an absolute, already realpath'd, existing directory
   *   (use {@link LocalStorageFactory.forRoot} to get one). Confinement checks what lies below it,
   *   never its own path again.
   * @param options.metadata - How metadata calls are made; the factory shares one between its storages.
   * @param options.syncBudgetMs - Overrides {@link SYNC_BATCH_BUDGET_MS}; 0 sends nearly every listed
   *   entry through the thread pool (how tests cover the slow-medium path).
   * @param options.nativeListing - false lists with Node's own calls even where the addon is built
   *   (how tests cover that path).
   */
  constructor(
    private readonly root: string,
    options: { metadata?: MetadataCalls; syncBudgetMs?: number; nativeListing?: boolean } = {},
  ) {
    this.meta = options.metadata ?? new MetadataCalls();
    if (!path.isAbsolute(root)) throw new TypeError("LocalStorage root must be an absolute path");
    this.rootPrefix = root.endsWith(path.sep) ? root : root + path.sep;
    this.syncBudgetMs = options.syncBudgetMs ?? SYNC_BATCH_BUDGET_MS;
    this.nativeListing = options.nativeListing !== false && directoryReaderAvailable;
  }

  get location(): string {
    return this.root;
  }

  isReserved(vpath: string): boolean {
    return isHidden(vpath);
  }

  /** {@inheritDoc Storage.stat} A reserved name (an upload in progress) is `not-found`. */
  async stat(vpath: string): Promise<FileInfo> {
    const info = await this.find(vpath);
    if (info === null) throw refuse("not-found", vpath);
    return info;
  }

  /** {@inheritDoc Storage.find} */
  async find(vpath: string): Promise<FileInfo | null> {
    if (isHidden(vpath)) return null;
    let st: Stats | null;
    try {
      const { target, dir } = await this.check(vpath);
      await dir.release();
      // undefined: the name is a symlink, or a directory on the way is missing or is not one; stat says which.
      st = target.entry !== undefined ? target.entry : await this.through(vpath, false, (pin) => this.meta.stat(pin.path));
    } catch (err) {
      const failure = toStorageError(err, vpath);
      if (failure.code === "not-found") return null;
      throw failure;
    }
    return st === null ? null : toFileInfo(virtualBasename(vpath), st);
  }

  /** {@inheritDoc Storage.findEntry} */
  async findEntry(vpath: string): Promise<FileInfo | null> {
    if (isHidden(vpath)) return null;
    let st: Stats | null;
    try {
      st = await this.through(vpath, true, (pin) => (pin.named ? this.meta.lstat(pin.path) : this.meta.stat(pin.path)));
    } catch (err) {
      const failure = toStorageError(err, vpath);
      if (failure.code === "not-found") return null;
      throw failure;
    }
    if (st === null) return null;
    const info = toFileInfo(virtualBasename(vpath), st);
    return info.type === "link" ? { ...info, size: 0 } : info;
  }

  /**
   * {@inheritDoc Storage.list}
   *
   * Entries are described following symlinks that stay inside the root (see {@link entryInfo}): in
   * batches read on the thread pool by the native reader ({@link readNatively}), or without it with
   * synchronous calls while the medium is fast (see {@link SYNC_BATCH_BUDGET_MS}). Batches, names and
   * reserved names as in {@link readDirectory}.
   */
  list(vpath: string): AsyncIterable<FileInfo[]> {
    if (this.nativeListing) return this.readNatively(vpath, true, (batch, prefix) => this.describeNative(batch, prefix));
    return this.readDirectory(vpath, (entries, sync) => this.describe(entries, sync));
  }

  /** {@inheritDoc Storage.listNames} Batches, names and reserved names as in {@link readDirectory}. */
  listNames(vpath: string): AsyncIterable<string[]> {
    if (this.nativeListing) return this.readNatively(vpath, false, async (batch) => namesOf(batch).names);
    return this.readDirectory(vpath, async (entries) => ({ items: entries.names, overBudget: false }));
  }

  /**
   * The listing through the native addon ({@link DirectoryReader}): the first batch of names and
   * their lstat facts is small and read at once while the medium is fast (paced as the metadata
   * calls are), every other batch on the thread pool (the next one while this one is sent).
   * Batches, reserved names and name decoding as in {@link readDirectory}.
   */
  private async *readNatively<T>(
    vpath: string,
    withFacts: boolean,
    describe: (batch: DirectoryBatch, prefix: string) => Promise<T[]>,
  ): AsyncIterable<T[]> {
    this.hideReserved(vpath);
    const pin = await this.pinFor(vpath, false);
    const reader = DirectoryReader.open(pin.path)!;
    const prefix = pin.path.endsWith(path.sep) ? pin.path : pin.path + path.sep;
    // The first batch at once when the medium is fast (null: not at once), else on the pool.
    let next: Promise<DirectoryBatch> | null = this.meta
      .call(() => reader.readNow(NATIVE_LIST_FIRST_BATCH, withFacts, NATIVE_LIST_FIRST_BUDGET_MS), async () => null)
      .then((batch) => batch ?? reader.read(NATIVE_LIST_BATCH, withFacts));
    try {
      while (next) {
        const batch: DirectoryBatch = await next;
        // The next batch is read on the pool while this one is described and sent.
        next = batch.done ? null : reader.read(NATIVE_LIST_BATCH, withFacts);
        const items = await describe(batch, prefix);
        if (items.length > 0) yield items;
      }
    } catch (err) {
      throw toStorageError(err, vpath);
    } finally {
      // Also when the consumer stops early: the batch being read must be back before the close.
      await next?.catch(() => undefined);
      reader.close();
      await pin.release();
    }
  }

  /** FileInfo for a native batch; symlinks are followed (or not) by {@link entryInfo}, on the pool. */
  private async describeNative(batch: DirectoryBatch, prefix: string): Promise<FileInfo[]> {
    const { names, indexes } = namesOf(batch);
    const items: FileInfo[] = [];
    const resolving: Promise<FileInfo | undefined>[] = [];
    for (let k = 0; k < names.length; k++) {
      const i = indexes[k];
      if (batch.isSymbolicLink(i)) resolving.push(this.entryInfo(Buffer.concat([Buffer.from(prefix), batch.rawName(i)]), names[k]));
      else items.push(fileInfoFromMode(names[k], batch.mode(i), batch.size(i), batch.mtimeMs(i)));
    }
    for (const info of await Promise.all(resolving)) if (info) items.push(info);
    return items;
  }

  /**
   * Reads a directory {@link LIST_BUFFER_SIZE} names at a time and yields each batch as `describe`
   * turns it into items, before reading more, so memory stays bounded by one batch. Reserved names
   * (uploads in progress, {@link RESERVED_PREFIX}) are left out; a name that is not valid UTF-8 is
   * listed, lossily decoded, rather than breaking the listing (see {@link readNames}).
   *
   * Pacing: names are read with synchronous calls, and `describe` is told to use them too, while a
   * batch stays within {@link SYNC_BATCH_BUDGET_MS}; after one that does not, the next 1, 2, 4 …
   * {@link MAX_POOL_BATCHES} batches go through the thread pool before the synchronous way is tried
   * again. The event loop gets a turn between synchronous batches.
   */
  private async *readDirectory<T>(
    vpath: string,
    describe: (entries: NamedEntries, sync: boolean) => Promise<{ items: T[]; overBudget: boolean }>,
  ): AsyncIterable<T[]> {
    this.hideReserved(vpath);
    const pin = await this.pinFor(vpath, false);
    let dir: Dir;
    try {
      dir = await opendir(pin.path, { bufferSize: LIST_BUFFER_SIZE, encoding: "latin1" });
    } catch (err) {
      await pin.release();
      throw toStorageError(err, vpath);
    }
    const prefix = pin.path.endsWith(path.sep) ? pin.path : pin.path + path.sep;
    // One listing's own pacing, a "call" being a batch (see SyncPacing).
    const pacing = new SyncPacing({ slowCallMs: this.syncBudgetMs, maxPoolCalls: MAX_POOL_BATCHES });
    try {
      for (let done = false; !done; ) {
        const sync = pacing.takeSynchronous();
        const started = performance.now();
        const entries = await this.readNames(dir, prefix, sync);
        const batch = await describe(entries, sync);
        if (sync) {
          pacing.settle(batch.overBudget || performance.now() - started > this.syncBudgetMs);
          await new Promise((resolve) => setImmediate(resolve));
        }
        done = entries.done;
        if (batch.items.length > 0) yield batch.items;
      }
    } catch (err) {
      throw toStorageError(err, vpath);
    } finally {
      // Also runs when the consumer stops iterating early.
      await dir.close();
      await pin.release();
    }
  }

  /**
   * Reads up to {@link LIST_BUFFER_SIZE} names from `dir` (whose real path ends with `prefix`), with
   * the paths to stat them by; `done` once the directory is exhausted.
   *
   * Names arrive as latin1 strings, one character per byte, so nothing is lost: an ASCII name (nearly
   * all) is already its own UTF-8 and is stat'ed by that string; any other is stat'ed by its bytes and
   * decoded lossily for display. Raw Buffer names for every entry cost a quarter of a listing's time.
   */
  private async readNames(dir: Dir, prefix: string, sync: boolean): Promise<NamedEntries> {
    const entries: NamedEntries = { names: [], paths: [], done: false };
    for (let read = 0; read < LIST_BUFFER_SIZE; read++) {
      const entry = sync ? dir.readSync() : await dir.read();
      if (entry === null) {
        entries.done = true;
        break;
      }
      const raw = entry.name;
      if (raw.startsWith(RESERVED_PREFIX)) continue;
      if (NON_ASCII.test(raw)) {
        const bytes = Buffer.from(raw, "latin1");
        entries.names.push(NAME_DECODER.decode(bytes));
        entries.paths.push(Buffer.concat([Buffer.from(prefix), bytes]));
      } else {
        entries.names.push(raw);
        entries.paths.push(prefix + raw);
      }
    }
    return entries;
  }

  /**
   * Describes read entries, with synchronous lstat calls (`sync`) until {@link SYNC_BATCH_BUDGET_MS}
   * is spent (`overBudget`: the rest goes through the pool), or through the thread pool. Symlinks
   * always go through {@link entryInfo} on the pool; entries removed since readdir are left out.
   */
  private async describe(entries: NamedEntries, sync: boolean): Promise<{ items: FileInfo[]; overBudget: boolean }> {
    const { names, paths } = entries;
    const started = performance.now();
    const items: FileInfo[] = [];
    const resolving: Promise<FileInfo | undefined>[] = [];
    let viaPool = !sync; // from the first entry, or once the budget is spent
    for (let i = 0; i < names.length; i++) {
      if (viaPool) {
        resolving.push(this.entryInfo(paths[i], names[i]));
        continue;
      }
      const st = lstatSync(paths[i], { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) resolving.push(this.entryInfo(paths[i], names[i]));
      else if (st !== undefined) items.push(toFileInfo(names[i], st));
      if ((i + 1) % SYNC_CLOCK_STRIDE === 0 && performance.now() - started > this.syncBudgetMs) viaPool = true;
    }
    for (const info of await Promise.all(resolving)) if (info) items.push(info);
    return { items, overBudget: sync && viaPool };
  }

  /** {@inheritDoc Storage.read} */
  async read(vpath: string, offset = 0): Promise<FileReadable> {
    const real = pinning ? this.rootJoin(vpath) : await this.locate(vpath, true);
    // Opening here (not lazily inside the stream) turns open errors into this promise's rejection.
    // A descriptor, not a FileHandle: there is no synchronous way to a FileHandle, and on a fast
    // disk the open and fstat cost less done at once than two trips through the thread pool.
    const fd = await this.openToRead(real, vpath);
    try {
      const info = await this.meta.fstat(fd);
      refuseUnlessFile(info, vpath);
      // The stream closes the descriptor when it ends or is destroyed (autoClose).
      const stream = createReadStream("", { fd, start: offset, highWaterMark: readChunkSize(info.size - offset), fs: this.streamCalls });
      // For a send without the stream (see LocalFile): the descriptor stays open until the stream is destroyed.
      return Object.assign(stream, { localFile: { fd, position: offset, size: info.size }, size: info.size }) satisfies FileReadable;
    } catch (err) {
      await this.meta.close(fd).catch(() => undefined);
      throw toStorageError(err, vpath);
    }
  }

  /**
   * A checked `real` opened for reading, confined (see pinned-paths.ts): a name right in the root that
   * is not a symlink is opened as it is (O_NOFOLLOW), since nothing but the root is resolved; any other
   * is pinned (O_PATH, no side effect) and its object reopened once it is known to be inside.
   */
  private async openToRead(real: string, vpath: string): Promise<number> {
    // Non-blocking: a FIFO would otherwise block the event loop until a writer came (read refuses it).
    const flags = fsConstants.O_RDONLY | fsConstants.O_NONBLOCK;
    try {
      if (!pinning) return await this.meta.openWith(real, flags);
      if (this.inRoot(real)) {
        try {
          return await this.meta.openWith(real, flags | fsConstants.O_NOFOLLOW);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ELOOP") throw err;
          // A symlink: pinned below.
        }
      }
      // Without a symlink on the way it is inside; else reopened through its pin: nothing is opened
      // for reading before it is known to be inside.
      const direct = await this.meta.openNoSymlinks(real, flags);
      if (direct !== null) return direct;
      return await this.through(vpath, false, (pin) => this.meta.openWith(pin.path, flags));
    } catch (err) {
      throw toStorageError(err, vpath);
    }
  }

  /**
   * {@inheritDoc Storage.write}
   *
   * A plain write replaces the file; `append` appends (and wins over `offset`); an `offset` above 0
   * writes into the existing file from there, keeping the bytes before and after the written range
   * (the file must exist). `offset: 0` is a plain write (REST 0 resets the restart point). The data
   * is fsync'ed before the promise resolves. `source` is destroyed on every failure.
   *
   * With `atomic`, a plain write goes to a temporary file in the target's directory (a reserved name,
   * created with the old file's permission bits) and is renamed over the target only once complete, so
   * a failure leaves the previous version untouched. A symlink target is followed (the link survives).
   * A read-only existing file is refused with `permission`, as an in-place overwrite would be.
   * Offset and append writes always act in place (they resume what is there).
   *
   * On failure, what arrived for a file that did not exist before is kept under its name (so the
   * client can resume with REST/APPE) unless `keepPartial` is false (the default is to keep); the
   * rejection is what marks it incomplete. A failed atomic overwrite keeps the previous version.
   */
  async write(vpath: string, source: UploadReadable, options: WriteOptions = {}): Promise<number> {
    const offset = options.offset ?? 0;
    const keepPartial = options.keepPartial !== false;
    const durable = options.durable === true;
    let target: Target;
    let dir: Pin;
    try {
      ({ target, dir } = await this.check(vpath));
    } catch (err) {
      source.destroy();
      throw err;
    }
    if (options.atomic && !options.append && offset <= 0) {
      let replaced: number | null;
      try {
        replaced = await this.writeAtomic(vpath, target, dir, source, durable, options);
      } catch (err) {
        await dir.release();
        throw err;
      }
      if (replaced !== null) {
        await dir.release();
        return replaced;
      }
      // Nothing to protect: a new file is written in place below.
    }
    const flags = options.append ? "a" : offset > 0 ? "r+" : "w";
    let fd: number;
    // The file by its name in its pinned directory: the name's own, or where a symlink name leads
    // (its target's directory, pinned too), kept until the upload ends.
    let file: Pin = dir;
    // Only needed to remove a failed new file: whether it was there.
    let created = false;
    try {
      if (target.resolved !== target.real) file = await this.pin(target.resolved, vpath, true);
      if (!keepPartial && flags !== "r+") created = target.entry === undefined ? !(await exists(target.resolved)) : target.entry === null;
      // A descriptor, not a FileHandle, as for read(): opened (and closed by fill) at once on a fast disk.
      // Never through a symlink: a rename since the check cannot make it create or truncate elsewhere.
      // Non-blocking, as for read(): opening a FIFO for writing would otherwise block the event loop
      // (the whole node) until some reader opened it; anything but a regular file is then refused.
      fd = await this.meta.openWith(file.path, OPEN_FLAGS[flags] | fsConstants.O_NONBLOCK | (pinning ? fsConstants.O_NOFOLLOW : 0));
      try {
        refuseUnlessFile(await this.meta.fstat(fd), vpath);
      } catch (err) {
        await this.meta.close(fd).catch(() => undefined);
        throw err;
      }
    } catch (err) {
      if (file !== dir) await file.release();
      await dir.release();
      source.destroy();
      throw toStorageError(err, vpath);
    }
    try {
      // An append (O_APPEND) has no position of its own to give a kernel copy.
      const bytes = await fill(fd, source, flags === "a" ? undefined : flags === "r+" ? offset : 0, durable, this.meta);
      options.signal?.throwIfAborted();
      return bytes;
    } catch (err) {
      if (created) await unlink(file.path).catch(() => undefined);
      throw toStorageError(err, vpath);
    } finally {
      if (file !== dir) await file.release();
      await dir.release();
    }
  }

  /**
   * The atomic replace of {@link write}: temporary file, (fsync,) rename, (fsync of the directory).
   * Resolves null, having consumed nothing, when there is no previous version to protect.
   */
  private async writeAtomic(
    vpath: string,
    located: Target,
    pinnedName: Pin,
    source: UploadReadable,
    durable: boolean,
    { signal, beforeReplace }: WriteOptions,
  ): Promise<number | null> {
    // The final file, through a symlink if the name is one: the link is kept, its target replaced.
    const target = located.resolved;
    let temp: string;
    let fd: number;
    let lock: number | null = null;
    // The target's directory, pinned until the rename: the temporary file is created, renamed (or
    // removed) in it. The name's own, unless the name is a symlink.
    let dir: Pin | null = null;
    let inDir = (name: string): string => name;
    try {
      const previous = located.entry !== undefined ? located.entry : await this.meta.stat(target).catch(nullIfMissing);
      if (previous === null) return null;
      if (previous.isDirectory()) throw refuse("is-dir", vpath);
      // rename(2) would replace a read-only file; an in-place overwrite (open O_TRUNC) would not.
      await this.meta.access(target, fsConstants.W_OK);
      dir = target === located.real ? { ...pinnedName, release: NOTHING_TO_RELEASE } : await this.pin(target, vpath, true);
      const pinnedDir = path.dirname(dir.path);
      inDir = (name) => path.join(pinnedDir, name);
      temp = path.join(path.dirname(target), temporaryName(path.basename(target)));
      liveUploads.add(temp);
      try {
        fd = await this.meta.open(inDir(path.basename(temp)), "wx");
      } catch (err) {
        liveUploads.delete(temp);
        throw err;
      }
      try {
        // Until the rename, a cleanup by another node sharing this storage must leave the file alone.
        lock = holdUploadLock(fd);
        // The owner and group first (chown clears set-id bits), then the mode. An overwrite in place
        // (vsftpd, ProFTPD) keeps both: a node run as root would otherwise hand an operator's file
        // (a web server's group, another user's) to root. Best effort: a node that may not give the
        // owner (not root) still gives the group where it belongs to it; the rest stays its own.
        if (previous.uid !== PROCESS_UID || previous.gid !== PROCESS_GID) {
          const unprivileged = (err: NodeJS.ErrnoException): void => {
            if (err.code !== "EPERM" && err.code !== "EINVAL") throw err;
          };
          await this.meta.fchown(fd, previous.uid, previous.gid).catch(async (err: NodeJS.ErrnoException) => {
            unprivileged(err);
            if (previous.gid !== PROCESS_GID) await this.meta.fchown(fd, -1, previous.gid).catch(unprivileged);
          });
        }
        await this.meta.fchmod(fd, previous.mode & 0o777);
      } catch (err) {
        await this.meta.close(fd).catch(() => undefined);
        await this.discardUpload(temp, lock, inDir(path.basename(temp)));
        throw err;
      }
    } catch (err) {
      await dir?.release();
      source.destroy();
      throw toStorageError(err, vpath);
    }
    const pinnedTemp = inDir(path.basename(temp));
    try {
      const bytes = await fill(fd, source, 0, durable, this.meta);
      await beforeReplace?.();
      signal?.throwIfAborted();
      await this.meta.rename(pinnedTemp, inDir(path.basename(target)));
      this.releaseUpload(temp, lock);
      if (durable) await syncDirectory(path.dirname(pinnedTemp));
      return bytes;
    } catch (err) {
      // A failed replace keeps the previous version, whatever the partial-upload policy.
      await this.discardUpload(temp, lock, pinnedTemp);
      throw toStorageError(err, vpath);
    } finally {
      await dir?.release();
    }
  }

  /** Removes a failed upload's temporary file, by `through` (its pinned path); a leftover is removed at the next start anyway. */
  private async discardUpload(temp: string, lock: number | null, through = temp): Promise<void> {
    await unlink(through).catch(() => undefined);
    this.releaseUpload(temp, lock);
  }

  /** The temporary file is renamed or removed: no longer this process's upload, nor locked. */
  private releaseUpload(temp: string, lock: number | null): void {
    liveUploads.delete(temp);
    if (lock !== null) void this.meta.close(lock).catch(() => undefined);
  }

  /** {@inheritDoc Storage.mkdir} */
  async mkdir(vpath: string): Promise<void> {
    await this.through(vpath, true, (pin) => this.meta.mkdir(pin.path)).catch((err: unknown) => {
      throw toStorageError(err, vpath);
    });
  }

  /** {@inheritDoc Storage.rmdir} The root itself is refused with `permission`. */
  async rmdir(vpath: string): Promise<void> {
    if (this.rootJoin(vpath) === this.root) throw refuse("permission", vpath);
    await this.through(vpath, true, (pin) => this.meta.rmdir(pin.path)).catch((err: unknown) => {
      throw toStorageError(err, vpath);
    });
  }

  /** {@inheritDoc Storage.delete} A symlink is removed itself, never its target. */
  async delete(vpath: string): Promise<void> {
    if (this.rootJoin(vpath) === this.root) throw refuse("permission", vpath);
    try {
      await this.through(vpath, true, async (pin) => {
        // unlink(2) on a directory is EISDIR on Linux but EPERM elsewhere; asking first is unambiguous.
        if ((await this.meta.lstat(pin.path))?.isDirectory()) throw refuse("is-dir", vpath);
        await this.meta.unlink(pin.path);
      });
    } catch (err) {
      throw toStorageError(err, vpath);
    }
  }

  /** {@inheritDoc Storage.rename} Moving the root, or onto it, is refused with `permission`. */
  async rename(from: string, to: string): Promise<void> {
    const subject = `${from} -> ${to}`;
    if (this.rootJoin(from) === this.root || this.rootJoin(to) === this.root) throw refuse("permission", subject);
    await this.through(from, true, (source) => this.through(to, true, (target) => this.meta.rename(source.path, target.path))).catch(
      (err: unknown) => {
        throw toStorageError(err, subject);
      },
    );
  }

  /** {@inheritDoc Storage.setModifiedTime} The access time is kept. */
  async setModifiedTime(vpath: string, mtime: Date): Promise<void> {
    try {
      await this.through(vpath, false, async (pin) => {
        const current = await this.meta.stat(pin.path);
        // Gone since it was located: utimes(2) says so (ENOENT).
        await this.meta.utimes(pin.path, current?.atime ?? new Date(), mtime);
      });
    } catch (err) {
      throw toStorageError(err, vpath);
    }
  }

  /** {@inheritDoc Storage.chmod} Only the permission bits (`mode & 0o777`) are applied. */
  async chmod(vpath: string, mode: number): Promise<void> {
    await this.through(vpath, false, (pin) => this.meta.chmod(pin.path, mode & 0o777)).catch((err: unknown) => {
      throw toStorageError(err, vpath);
    });
  }

  /**
   * Walks the tree below `vpath` without following symlinks (a link counts as one entry), one
   * directory handle open at a time, with an explicit stack instead of recursion.
   */
  async usage(vpath: string): Promise<Usage> {
    const total: Usage = { bytes: 0, files: 0 };
    const pending = [await this.locate(vpath, true)];
    while (pending.length > 0) {
      const dir = pending.pop()!;
      let handle: Dir;
      try {
        handle = await opendir(dir, { bufferSize: 256 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // removed while we walked
        throw toStorageError(err, vpath);
      }
      for await (const entry of handle) {
        const full = path.join(dir, entry.name);
        total.files++;
        if (entry.isDirectory()) pending.push(full);
        else if (entry.isFile()) total.bytes += (await lstat(full).catch(() => null))?.size ?? 0;
      }
    }
    return total;
  }

  /**
   * `real` (as {@link locate} or {@link inspect} checked it) pinned for one call (see pinned-paths.ts):
   * with `entry`, its directory is opened and the pin names the entry in it (for calls on the entry
   * itself: lstat, mkdir, rmdir, unlink, rename, an upload's open); otherwise `real` itself is opened,
   * symlinks followed. Refused with `permission` when what was opened lies outside the root (a rename
   * since the check); throws as open(2) does otherwise (`not-found`…). `release` once the call is done.
   */
  private async pin(real: string, vpath: string, entry: boolean): Promise<Pin> {
    const named = entry && real !== this.root;
    // A name right in the root needs no pin: the root is the only directory resolved, and no client
    // can rename it. Nor does anything where paths are not pinned.
    if (!pinning || (named && this.inRoot(real))) return { path: real, named, release: NOTHING_TO_RELEASE };
    const opened = named ? path.dirname(real) : real;
    let fd: number;
    try {
      // Most paths hold no symlink: opened without following one, it is where its name says.
      const direct = await this.meta.openNoSymlinks(opened, referenceFlags(named));
      if (direct !== null) fd = direct;
      else {
        fd = await this.meta.openWith(opened, referenceFlags(named));
        await this.confine(fd, vpath);
      }
    } catch (err) {
      throw toStorageError(err, vpath);
    }
    return {
      path: throughDescriptor(fd, named ? path.basename(real) : undefined),
      named,
      // A directory's reference frees nothing when closed; what else is pinned might (see MetadataCalls.close).
      release: named ? async () => closeSync(fd) : () => this.meta.close(fd).catch(() => undefined),
    };
  }

  /** Whether `real` names an entry right in the root. */
  private inRoot(real: string): boolean {
    return path.dirname(real) === this.root;
  }

  /**
   * What `vpath` leads to, pinned as {@link pin} does (with `entry`, the entry itself in its
   * directory; otherwise the object, symlinks followed): the pin is the confinement check. Where it
   * fails, the full check ({@link locate}) has the last word when it has an answer of its own (a
   * dangling link leading outside: `permission`). Without pinning, the checked path itself.
   */
  private async pinFor(vpath: string, entry: boolean): Promise<Pin> {
    if (!pinning) {
      const real = await this.locate(vpath, !entry);
      return { path: real, named: entry && real !== this.root, release: NOTHING_TO_RELEASE };
    }
    try {
      return await this.pin(this.rootJoin(vpath), vpath, entry);
    } catch (err) {
      await this.locate(vpath, !entry);
      throw err;
    }
  }

  /** `call` on {@link pinFor}'s pin, released once it settles. */
  private async through<T>(vpath: string, entry: boolean, call: (pin: Pin) => Promise<T>): Promise<T> {
    const pin = await this.pinFor(vpath, entry);
    try {
      return await call(pin);
    } finally {
      await pin.release();
    }
  }

  /**
   * {@link inspect} with the name's directory pinned ({@link pinFor}), for the caller to use and then
   * release: what is at the name, from its lstat in the pinned directory. A symlink there (or, without
   * pinning, anything) is left to {@link inspect}'s full resolution.
   */
  private async check(vpath: string): Promise<{ target: Target; dir: Pin }> {
    if (!pinning) {
      const target = await this.inspect(vpath);
      return { target, dir: { path: target.real, named: target.real !== this.root, release: NOTHING_TO_RELEASE } };
    }
    const dir = await this.pinFor(vpath, true);
    try {
      const real = this.rootJoin(vpath);
      const entry = dir.named ? await this.meta.lstat(dir.path) : await this.meta.stat(dir.path);
      if (entry?.isSymbolicLink()) return { target: await this.inspect(vpath), dir };
      return { target: { real, resolved: real, entry }, dir };
    } catch (err) {
      await dir.release();
      throw toStorageError(err, vpath);
    }
  }

  /**
   * Refused with `permission` (the descriptor closed) unless the object open at `fd` lies inside the
   * root, as the kernel says: the last word on a checked path once it is open (see pinned-paths.ts).
   */
  private async confine(fd: number, vpath: string): Promise<void> {
    let place: string | null = null;
    try {
      place = placeOf(fd);
    } catch {
      // Nothing to go by: refused.
    }
    if (place !== null && this.isInside(place)) return;
    await this.meta.close(fd).catch(() => undefined);
    throw refuse("permission", vpath);
  }

  /**
   * Maps a virtual path to `root + path` after checking that what the kernel will touch is inside the
   * root. With `follow`, the target itself is resolved (operations that go through a final symlink);
   * without, only its parent is (operations on the directory entry itself: a symlink is renamed or
   * removed, never its target). A path through a reserved name is refused with `invalid-path`.
   */
  private async locate(vpath: string, follow: boolean): Promise<string> {
    const real = this.rootJoin(vpath);
    const checked = follow || real === this.root ? real : path.dirname(real);
    let resolved: string;
    try {
      // The root is a real path (see the constructor): nothing above it is looked at.
      if (checked === this.root || (await this.lstatBelowRoot(checked)) !== SYMLINK_MET) return real;
      resolved = await this.meta.realpath(checked).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
        return resolveReal(checked); // something on the way is missing: walk it, dangling links included
      });
    } catch (err) {
      throw toStorageError(err, vpath);
    }
    if (!this.isInside(resolved)) throw refuse("permission", vpath);
    return real;
  }

  /**
   * {@link locate} with `follow`, for operations that also need what is there (stat, uploads): a path
   * without a symlink costs one lstat per segment below the root, the last of which says what is
   * there, and a missing one (every new upload) throws nothing. A symlink anywhere on the way, or a
   * final one, is resolved by the full walk: the same path results, checked the same way.
   */
  private async inspect(vpath: string): Promise<Target> {
    const real = this.rootJoin(vpath);
    let target: Target;
    try {
      const entry = await this.lstatBelowRoot(real);
      target = entry !== SYMLINK_MET ? { real, resolved: real, entry } : await this.resolveThroughLinks(real);
    } catch (err) {
      throw toStorageError(err, vpath);
    }
    if (!this.isInside(target.resolved)) throw refuse("permission", vpath);
    return target;
  }

  /**
   * lstat of each segment of `real` (the root or below it) from the root down, stopping at the first
   * that is missing or a symlink. Without a symlink on the way, `real` is where the kernel acts (the
   * root being a real path), so this is realpath(3) without its walk over the root's own segments.
   * Returns {@link SYMLINK_MET}, or what is at `real` itself: its lstat, null when nothing is there,
   * undefined when a directory on the way is missing or not a directory (ENOENT/ENOTDIR: the
   * operation's own call reports which).
   */
  private async lstatBelowRoot(real: string): Promise<Stats | null | undefined | typeof SYMLINK_MET> {
    // Index of the separator before the segment to look at next (the root's own length for a root "/").
    let cut = real === this.root ? real.length : this.rootPrefix.length - 1;
    for (;;) {
      const next = real.indexOf(path.sep, cut + 1);
      let entry: Stats | null;
      try {
        entry = await this.meta.lstat(next < 0 ? real : real.slice(0, next));
      } catch (err) {
        if (!isMissing(err)) throw err;
        return undefined;
      }
      if (entry === null) return next < 0 ? null : undefined;
      if (entry.isSymbolicLink()) return SYMLINK_MET;
      if (next < 0) return entry;
      cut = next;
    }
  }

  /** {@link inspect} of a path with a symlink on the way: the directory resolved by realpath, then the name. */
  private async resolveThroughLinks(real: string): Promise<Target> {
    let realDir: string;
    try {
      realDir = await this.meta.realpath(path.dirname(real));
    } catch (err) {
      if (!isMissing(err)) throw err;
      return { real, resolved: await resolveReal(real), entry: undefined };
    }
    const resolved = path.join(realDir, path.basename(real));
    let entry: Stats | null;
    try {
      entry = await this.meta.lstat(resolved);
    } catch (err) {
      // ENOTDIR (the "directory" is a file): nothing there; the operation itself reports why.
      if (!isMissing(err)) throw err;
      return { real, resolved, entry: undefined };
    }
    if (entry?.isSymbolicLink()) return { real, resolved: await resolveReal(resolved), entry: undefined };
    return { real, resolved, entry };
  }

  /**
   * `root + path`. Re-normalising is idempotent for well-formed input and keeps a careless caller
   * inside the root; a path through a reserved name is refused with `invalid-path`.
   */
  private rootJoin(vpath: string): string {
    const virtual = resolveVirtualPath("/", vpath);
    if (isReservedPath(virtual)) throw refuse("invalid-path", vpath);
    // path.join would leave a trailing separator for "/", and the root is compared by equality.
    return virtual === "/" ? this.root : path.join(this.root, virtual);
  }

  /** Reserved names do not exist for a client's stat or listing. */
  private hideReserved(vpath: string): void {
    if (isHidden(vpath)) throw refuse("not-found", vpath);
  }

  private isInside(real: string): boolean {
    return real === this.root || real.startsWith(this.rootPrefix);
  }

  /**
   * What the symlink at `full` leads to, when that is inside the root; null when it leads outside.
   * With pinning, what it leads to is opened (O_PATH) and asked where it is, so a rename meanwhile
   * cannot show an outside file's facts; throws when it leads nowhere.
   */
  private async linkTarget(full: string | Buffer): Promise<Stats | null> {
    if (!pinning) return this.isInside(await realpath(full)) ? stat(full) : null;
    const fd = await openAsync(full, referenceFlags(false));
    try {
      return this.isInside(placeOf(fd)) ? await fstatAsync(fd) : null;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Describes one listed entry from its real path (a string, or raw bytes for a name that is not
   * ASCII). A symlink is followed when it stays inside the root; a dangling or escaping one is reported
   * as a `link` of size 0. An entry that vanished between readdir and stat is skipped (`undefined`).
   */
  private async entryInfo(full: string | Buffer, name: string): Promise<FileInfo | undefined> {
    let st: Stats;
    try {
      st = await lstat(full);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    if (!st.isSymbolicLink()) return toFileInfo(name, st);
    try {
      const target = await this.linkTarget(full);
      if (target) return toFileInfo(name, target);
    } catch {
      // Dangling or looping: describe the link itself.
    }
    return { ...toFileInfo(name, st), size: 0 };
  }
}

/** Bounds of the leftover-upload cleanup: it never walks more than this, whatever the tree. */
export interface CleanupLimits {
  /** Directory entries examined at most (default 100,000). */
  maxEntries?: number;
  /** Directory levels below the root walked at most (default 64). */
  maxDepth?: number;
}

export interface CleanupResult {
  /** Leftover temporary files removed. */
  removed: number;
  /** Directory entries examined. */
  scanned: number;
  /** False when a limit stopped the walk, or a directory or file could not be read or removed. */
  complete: boolean;
}

const DEFAULT_CLEANUP_LIMITS: Required<CleanupLimits> = { maxEntries: 100_000, maxDepth: 64 };

/**
 * Removes the temporary files of uploads that a killed process left below `root` (regular files with
 * the {@link RESERVED_PREFIX}), except those of uploads in progress: this process's, and another's
 * holding the file's upload lock (upload-lock.ts), as a node sharing the storage does.
 *
 * The walk is iterative (an explicit stack, one directory handle open at a time), never follows
 * symlinks, and stops at `maxEntries` entries or `maxDepth` levels. Names are handled as raw bytes, so
 * a directory whose name is not UTF-8 is walked too. Never throws: what it could not do shows as
 * `complete: false`.
 */
export async function removeLeftoverUploads(root: string, limits: CleanupLimits = {}): Promise<CleanupResult> {
  const { maxEntries, maxDepth } = { ...DEFAULT_CLEANUP_LIMITS, ...limits };
  const result: CleanupResult = { removed: 0, scanned: 0, complete: true };
  const separator = Buffer.from(path.sep);
  const pending: Array<{ dir: Buffer; depth: number }> = [{ dir: Buffer.from(root), depth: 0 }];
  while (pending.length > 0) {
    const { dir, depth } = pending.pop()!;
    let handle: Dir;
    try {
      handle = await opendir(dir as unknown as string, { bufferSize: LIST_BUFFER_SIZE, encoding: "buffer" as BufferEncoding });
    } catch (err) {
      if (!isMissing(err)) result.complete = false; // removed while we walked is fine; unreadable is not
      continue;
    }
    try {
      for (;;) {
        const entry = (await handle.read()) as unknown as Dirent<Buffer> | null;
        if (entry === null) break;
        if (result.scanned >= maxEntries) {
          result.complete = false;
          pending.length = 0;
          break;
        }
        result.scanned++;
        const full = Buffer.concat([dir, separator, entry.name]);
        if (entry.isDirectory()) {
          if (depth < maxDepth) pending.push({ dir: full, depth: depth + 1 });
          else result.complete = false;
        } else if (entry.isFile() && isReservedName(entry.name) && !liveUploads.has(full.toString()) && !(await lockedByAnUpload(full))) {
          try {
            await unlink(full);
            result.removed++;
          } catch (err) {
            if (!isMissing(err)) result.complete = false;
          }
        }
      }
    } catch {
      result.complete = false;
    } finally {
      await handle.close().catch(() => undefined);
    }
  }
  return result;
}

export interface LocalStorageFactoryOptions {
  /** Where the leftover-upload cleanup reports; without one, failures become a process warning. */
  logger?: Pick<Logger, "info" | "warn">;
  /** Bounds of the leftover-upload cleanup, or false to skip it. */
  cleanup?: CleanupLimits | false;
  /** How metadata calls are made (default: synchronously while the disk answers fast, see MetadataCalls). */
  metadata?: MetadataCalls;
}

/** Creates {@link LocalStorage} instances, one per login. */
export class LocalStorageFactory implements StorageFactory {
  /** One cleanup per real root for the life of this factory (that is, of the process serving it). */
  private readonly cleanups = new Map<string, Promise<CleanupResult | null>>();

  /** Shared by every storage of this factory: a slow disk is noticed once for all of them. */
  private readonly meta: MetadataCalls;

  constructor(private readonly options: LocalStorageFactoryOptions = {}) {
    this.meta = options.metadata ?? new MetadataCalls();
  }

  /**
   * Creates `root` (recursively) when missing, resolves it to its real path and returns a storage
   * confined to it. The first time a root is served, the temporary files a killed process left in it
   * are removed first (see {@link removeLeftoverUploads}); concurrent logins wait for the same
   * cleanup, later ones do not wait at all. A failed cleanup is logged and does not fail the login.
   *
   * @throws StorageError when the directory cannot be created or resolved; the message does not reveal
   *   the real path, which stays in `cause`.
   */
  async forRoot(root: string): Promise<Storage> {
    let real: string;
    try {
      await this.meta.mkdir(root, true);
      real = await this.meta.realpath(path.resolve(root));
    } catch (err) {
      throw toStorageError(err, "home directory");
    }
    await this.cleanupOnce(real);
    return new LocalStorage(real, { metadata: this.meta });
  }

  /**
   * The leftover-upload cleanup of a real root path: started on the first call, the same promise after.
   * Resolves with what was done (null when cleanup is disabled); never rejects.
   */
  cleanupOnce(realRoot: string): Promise<CleanupResult | null> {
    let cleaning = this.cleanups.get(realRoot);
    if (!cleaning) {
      const limits = this.options.cleanup;
      cleaning =
        limits === false
          ? Promise.resolve(null)
          : removeLeftoverUploads(realRoot, limits).then(
              (result) => this.report(realRoot, result),
              (err: unknown) => {
                // Not expected (the walk reports rather than throws), and never a reason to refuse a login.
                this.report(realRoot, { removed: 0, scanned: 0, complete: false }, err);
                return null;
              },
            );
      this.cleanups.set(realRoot, cleaning);
    }
    return cleaning;
  }

  private report(root: string, result: CleanupResult, err?: unknown): CleanupResult {
    const { logger } = this.options;
    if (result.removed > 0) logger?.info({ root, ...result }, "removed temporary files left by interrupted uploads");
    if (!result.complete) {
      const message = "cleanup of temporary upload files incomplete (entry or depth limit, or unreadable entries)";
      if (logger) logger.warn({ root, ...result, ...(err === undefined ? {} : { err }) }, message);
      else process.emitWarning(`${message}: ${root}`, { code: "EDGEFTP_UPLOAD_CLEANUP" });
    }
    return result;
  }
}
