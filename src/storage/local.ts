/**
 * The local-disk Storage: one account's root directory on the server's own file system.
 *
 * Confinement: a virtual path maps to `root + path`, and before every operation the real location the
 * kernel would act on is computed (following symlinks, including dangling ones) and must lie inside the
 * root. A symlink leading outside the root makes the operation fail with `permission`; in a listing such
 * an entry (and a dangling one) is reported as type `link` with size 0 so that one bad link cannot break
 * the whole listing. FTP clients cannot create symlinks, so the remaining check-then-use race needs a
 * local user who can already write inside the root; it is accepted.
 */
import type { Dir, Dirent, Stats } from "node:fs";
import {
  type FileHandle,
  chmod,
  lstat,
  mkdir,
  open,
  opendir,
  readlink,
  realpath,
  rename,
  rmdir,
  stat,
  unlink,
  utimes,
} from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  StorageError,
  type EntryType,
  type FileInfo,
  type Storage,
  type StorageCapabilities,
  type StorageErrorCode,
  type StorageFactory,
  type Usage,
  type WriteOptions,
} from "./types.js";
import { resolveVirtualPath, virtualBasename } from "./virtual-path.js";

/** Directory entries read per readdir call: bounds listing memory whatever the directory's size. */
const LIST_BUFFER_SIZE = 256;
/** Large chunks keep the per-chunk overhead small on fast data connections. */
const STREAM_CHUNK_SIZE = 256 * 1024;
/** The kernel's own limit (Linux MAXSYMLINKS), so our resolution gives up where open() would. */
const MAX_SYMLINK_HOPS = 40;

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

function refuse(code: StorageErrorCode, subject: string): StorageError {
  return new StorageError(code, `${MESSAGE_BY_CODE[code]}: ${subject}`);
}

function entryType(st: Stats): EntryType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "link";
  return "other";
}

function toFileInfo(name: string, st: Stats): FileInfo {
  return { name, type: entryType(st), size: st.size, mtime: st.mtime, mode: st.mode & 0o777 };
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * The real path the kernel would act on for `p`: symlinks followed (dangling ones too, since writing
 * through one creates its target), components that do not exist yet appended as they are.
 */
async function resolveReal(p: string, hops = 0): Promise<string> {
  try {
    return await realpath(p);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  if (hops > MAX_SYMLINK_HOPS) {
    throw Object.assign(new Error("Too many levels of symbolic links"), { code: "ELOOP" });
  }
  const parent = path.dirname(p);
  const realParent = parent === p ? parent : await resolveReal(parent, hops);
  let target: string;
  try {
    target = await readlink(p);
  } catch {
    // Not a symlink: it simply does not exist (yet).
    return path.join(realParent, path.basename(p));
  }
  return resolveReal(path.resolve(realParent, target), hops + 1);
}

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

  /**
   * @param root - The account's root: an absolute, already realpath'd, existing directory
   *   (use {@link LocalStorageFactory.forRoot} to get one).
   */
  constructor(private readonly root: string) {
    if (!path.isAbsolute(root)) throw new TypeError("LocalStorage root must be an absolute path");
    this.rootPrefix = root.endsWith(path.sep) ? root : root + path.sep;
  }

  /** {@inheritDoc Storage.stat} */
  async stat(vpath: string): Promise<FileInfo> {
    const real = await this.locate(vpath, true);
    try {
      return toFileInfo(virtualBasename(vpath), await stat(real));
    } catch (err) {
      throw toStorageError(err, vpath);
    }
  }

  /**
   * {@inheritDoc Storage.list}
   *
   * Entries are read {@link LIST_BUFFER_SIZE} at a time; each batch is stat'ed concurrently (following
   * symlinks that stay inside the root) and yielded before the next is read, so memory stays bounded by
   * one batch. Names are read as raw bytes and stat'ed by those bytes, so a name that is not valid UTF-8
   * is listed (lossily decoded) rather than breaking the listing.
   */
  async *list(vpath: string): AsyncIterable<FileInfo> {
    const real = await this.locate(vpath, true);
    let dir: Dir;
    try {
      // @types/node only types string names, but Node supports `encoding: "buffer"` here.
      dir = await opendir(real, { bufferSize: LIST_BUFFER_SIZE, encoding: "buffer" as BufferEncoding });
    } catch (err) {
      throw toStorageError(err, vpath);
    }
    const readEntry = async () => (await dir.read()) as unknown as Dirent<Buffer> | null;
    const dirPrefix = Buffer.from(real.endsWith(path.sep) ? real : real + path.sep);
    try {
      let done = false;
      while (!done) {
        const batch: Dirent<Buffer>[] = [];
        while (batch.length < LIST_BUFFER_SIZE) {
          const entry = await readEntry();
          if (entry === null) {
            done = true;
            break;
          }
          batch.push(entry);
        }
        const infos = await Promise.all(
          batch.map((entry) => this.entryInfo(Buffer.concat([dirPrefix, entry.name]), entry.name)),
        );
        for (const info of infos) if (info) yield info;
      }
    } catch (err) {
      throw toStorageError(err, vpath);
    } finally {
      // Also runs when the consumer stops iterating early.
      await dir.close();
    }
  }

  /** {@inheritDoc Storage.read} */
  async read(vpath: string, offset = 0): Promise<Readable> {
    const real = await this.locate(vpath, true);
    // Opening here (not lazily inside the stream) turns open errors into this promise's rejection.
    const handle = await open(real, "r").catch((err: unknown) => {
      throw toStorageError(err, vpath);
    });
    try {
      // Linux lets open(2) succeed on a directory; the failure would only come with the first read.
      if ((await handle.stat()).isDirectory()) throw refuse("is-dir", vpath);
      return handle.createReadStream({ start: offset, highWaterMark: STREAM_CHUNK_SIZE });
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw toStorageError(err, vpath);
    }
  }

  /**
   * {@inheritDoc Storage.write}
   *
   * A plain write truncates; `append` appends (and wins over `offset`); an `offset` above 0 writes into
   * the existing file from there, keeping the bytes before and after the written range (the file must
   * exist). `offset: 0` is a plain write (REST 0 resets the restart point). The data is fsync'ed before
   * the promise resolves. On failure the partial file is left in place so a client can resume it; the
   * rejection is what marks it incomplete. `source` is destroyed on every failure.
   */
  async write(vpath: string, source: Readable, options: WriteOptions = {}): Promise<number> {
    const offset = options.offset ?? 0;
    const flags = options.append ? "a" : offset > 0 ? "r+" : "w";
    let handle: FileHandle;
    try {
      const real = await this.locate(vpath, true);
      handle = await open(real, flags);
    } catch (err) {
      source.destroy();
      throw toStorageError(err, vpath);
    }
    try {
      const sink = handle.createWriteStream({
        start: flags === "r+" ? offset : undefined,
        highWaterMark: STREAM_CHUNK_SIZE,
        // fsync before the stream closes the handle: resolving promises durable data (Node >= 20.10).
        flush: true,
      });
      // On success pipeline settles after the stream has flushed and closed the handle.
      await pipeline(source, sink);
      return sink.bytesWritten;
    } catch (err) {
      throw toStorageError(err, vpath);
    } finally {
      // The stream closes the handle itself, but on failure pipeline may settle first; this waits for
      // that close (a FileHandle closes once every user has let go) and is a no-op once it is done.
      // A failure to close after a failed transfer adds nothing worth reporting over the first error.
      await handle.close().catch(() => undefined);
    }
  }

  /** {@inheritDoc Storage.mkdir} */
  async mkdir(vpath: string): Promise<void> {
    const real = await this.locate(vpath, false);
    await mkdir(real).catch((err: unknown) => {
      throw toStorageError(err, vpath);
    });
  }

  /** {@inheritDoc Storage.rmdir} The root itself is refused with `permission`. */
  async rmdir(vpath: string): Promise<void> {
    const real = await this.locate(vpath, false);
    if (real === this.root) throw refuse("permission", vpath);
    await rmdir(real).catch((err: unknown) => {
      throw toStorageError(err, vpath);
    });
  }

  /** {@inheritDoc Storage.delete} A symlink is removed itself, never its target. */
  async delete(vpath: string): Promise<void> {
    const real = await this.locate(vpath, false);
    if (real === this.root) throw refuse("permission", vpath);
    try {
      // unlink(2) on a directory is EISDIR on Linux but EPERM elsewhere; asking first is unambiguous.
      if ((await lstat(real)).isDirectory()) throw refuse("is-dir", vpath);
      await unlink(real);
    } catch (err) {
      throw toStorageError(err, vpath);
    }
  }

  /** {@inheritDoc Storage.rename} Moving the root, or onto it, is refused with `permission`. */
  async rename(from: string, to: string): Promise<void> {
    const subject = `${from} -> ${to}`;
    const realFrom = await this.locate(from, false);
    const realTo = await this.locate(to, false);
    if (realFrom === this.root || realTo === this.root) throw refuse("permission", subject);
    await rename(realFrom, realTo).catch((err: unknown) => {
      throw toStorageError(err, subject);
    });
  }

  /** {@inheritDoc Storage.setModifiedTime} The access time is kept. */
  async setModifiedTime(vpath: string, mtime: Date): Promise<void> {
    const real = await this.locate(vpath, true);
    try {
      await utimes(real, (await stat(real)).atime, mtime);
    } catch (err) {
      throw toStorageError(err, vpath);
    }
  }

  /** {@inheritDoc Storage.chmod} Only the permission bits (`mode & 0o777`) are applied. */
  async chmod(vpath: string, mode: number): Promise<void> {
    const real = await this.locate(vpath, true);
    await chmod(real, mode & 0o777).catch((err: unknown) => {
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
   * Maps a virtual path to `root + path` after checking that what the kernel will touch is inside the
   * root. With `follow`, the target itself is resolved (operations that go through a final symlink);
   * without, only its parent is (operations on the directory entry itself: a symlink is renamed or
   * removed, never its target).
   */
  private async locate(vpath: string, follow: boolean): Promise<string> {
    // Re-normalising is idempotent for well-formed input and keeps a careless caller inside the root.
    const virtual = resolveVirtualPath("/", vpath);
    // path.join would leave a trailing separator for "/", and the root is compared by equality.
    const real = virtual === "/" ? this.root : path.join(this.root, virtual);
    const checked = follow || virtual === "/" ? real : path.dirname(real);
    let resolved: string;
    try {
      resolved = await resolveReal(checked);
    } catch (err) {
      throw toStorageError(err, vpath);
    }
    if (!this.isInside(resolved)) throw refuse("permission", vpath);
    return real;
  }

  private isInside(real: string): boolean {
    return real === this.root || real.startsWith(this.rootPrefix);
  }

  /**
   * Describes one listed entry from its raw path. A symlink is followed when it stays inside the root;
   * a dangling or escaping one is reported as a `link` of size 0. An entry that vanished between readdir
   * and stat is skipped (`undefined`).
   */
  private async entryInfo(rawPath: Buffer, rawName: Buffer): Promise<FileInfo | undefined> {
    const name = NAME_DECODER.decode(rawName);
    let st: Stats;
    try {
      st = await lstat(rawPath);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    if (!st.isSymbolicLink()) return toFileInfo(name, st);
    try {
      if (this.isInside(await realpath(rawPath))) return toFileInfo(name, await stat(rawPath));
    } catch {
      // Dangling or looping: describe the link itself.
    }
    return { ...toFileInfo(name, st), size: 0 };
  }
}

/** Creates {@link LocalStorage} instances, one per login. */
export class LocalStorageFactory implements StorageFactory {
  /**
   * Creates `root` (recursively) when missing, resolves it to its real path and returns a storage
   * confined to it.
   *
   * @throws StorageError when the directory cannot be created or resolved; the message does not reveal
   *   the real path, which stays in `cause`.
   */
  async forRoot(root: string): Promise<Storage> {
    try {
      await mkdir(root, { recursive: true });
      return new LocalStorage(await realpath(path.resolve(root)));
    } catch (err) {
      throw toStorageError(err, "home directory");
    }
  }
}
