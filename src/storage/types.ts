/**
 * The storage contract: what a session needs from a file system, and nothing of FTP.
 *
 * Every path given to a Storage is a *virtual* path: absolute, POSIX, already normalised
 * by `resolveVirtualPath` (no `.`/`..` segments, no NUL or control characters), relative to
 * the account's root. A backend maps it onto its medium and must never reach outside the root.
 */
import type { Readable } from "node:stream";

export type EntryType = "file" | "dir" | "link" | "other";

/** One directory entry or the result of a stat. */
export interface FileInfo {
  /** Base name (for stat of "/", the name is "/"). Not guaranteed to be valid UTF-8 on disk; backends decode lossily. */
  name: string;
  type: EntryType;
  /** Size in bytes (0 for directories where the medium has none). */
  size: number;
  /** Last modification time. */
  mtime: Date;
  /** POSIX permission bits when the medium has them (e.g. 0o644). */
  mode?: number;
  /** For `other`, ls's letter for what it is when the medium says: `p` FIFO, `s` socket, `c`/`b` device. */
  special?: SpecialKind;
}

export type SpecialKind = "p" | "s" | "c" | "b";

/** What a backend can do; the dispatcher answers 502/504 for what it lacks. */
export interface StorageCapabilities {
  /** Writes may start at an offset inside an existing file (REST + STOR). */
  writeAtOffset: boolean;
  /** APPE. */
  append: boolean;
  /** MFMT / SITE UTIME. */
  setModifiedTime: boolean;
  /** SITE CHMOD. */
  chmod: boolean;
}

export interface WriteOptions {
  /** Start writing at this byte offset, keeping the bytes before it (REST + STOR). */
  offset?: number;
  /** Append to the end of the existing file (APPE); creates it when missing. */
  append?: boolean;
  /**
   * Replace an existing file only once the upload has completed (write elsewhere, then rename), so
   * a failed upload never destroys the previous version. Applies to whole-file writes (no offset,
   * no append).
   */
  atomic?: boolean;
  /** When the upload of a new file fails: keep what arrived (so the client can resume) or remove it. */
  keepPartial?: boolean;
  /** fsync the data (and, for an atomic replace, the directory) before resolving: survives a power loss. */
  durable?: boolean;
  /**
   * The transfer's: aborted (ABOR, the client gone) before the file is committed, the write fails
   * even when the source has ended meanwhile (a killed client's data connection closes cleanly
   * too), so a truncated upload never replaces the previous version nor passes as complete.
   */
  signal?: AbortSignal;
  /** Awaited once the data is complete, just before an atomic write replaces a previous version: the last moment to abort `signal`. */
  beforeReplace?: () => Promise<void>;
}

/**
 * An open file on a local file system, from `position` on. A backend that has one attaches it to
 * what it reads ({@link FileReadable}), so the data layer can send it without a stream: by the
 * kernel itself (sendfile(2)) or from reused buffers; an upload source that can move its bytes
 * into such a file itself ({@link UploadReadable}) gets one from the backend's write instead of
 * being read as a stream. Backends without local files (object storage) offer neither.
 */
export interface LocalFile {
  readonly fd: number;
  readonly position: number;
  /** The file's size when it was opened: a hint for buffer sizes (a send goes on to EOF). */
  readonly size?: number;
}

/** What `Storage.read` returns: a stream, possibly with the open file behind it. */
export interface FileReadable extends Readable {
  /** The file from the read's offset; valid until the stream is destroyed. */
  readonly localFile?: LocalFile;
  /** The whole file's size when it was opened, where the backend learnt it in opening the file. */
  readonly size?: number;
}

/** What `Storage.write` consumes: a stream, possibly able to move its bytes into a file itself. */
export interface UploadReadable extends Readable {
  /**
   * Moves every byte of the upload into `file` (from its position) and resolves with the count;
   * rejects like a failing stream would. Resolves null, having read nothing, when it cannot do it
   * after all: then the backend reads the stream as usual.
   */
  readonly copyInto?: (file: LocalFile) => Promise<number | null>;
}

/** What a directory tree holds: bytes of its files, and its entries (files and directories). */
export interface Usage {
  bytes: number;
  files: number;
}

export interface Storage {
  readonly capabilities: StorageCapabilities;
  /**
   * Where the files are, as a key: two storages with the same location (two accounts with one
   * home) hold the same files, and one whose location continues another's with `/` holds part of
   * them. Local disk: the root's real path.
   */
  readonly location: string;
  /**
   * Whether `path` goes through a name the backend keeps for itself (local disk: an upload's
   * temporary file): such a path does not exist for reads (not-found) and is refused to writes
   * (invalid-path). Lets an upload be refused before its data connection is opened.
   */
  isReserved(path: string): boolean;
  /** Throws StorageError("not-found") when absent. Follows symlinks that stay inside the root. */
  stat(path: string): Promise<FileInfo>;
  /**
   * {@link stat}, but null where stat would throw not-found: for callers to whom absence is an
   * answer (every new upload), without building an error.
   */
  find(path: string): Promise<FileInfo | null>;
  /**
   * The directory entry `path` names, a final symlink not followed (a `link` of size 0, wherever
   * it points): what DELE removes and RNFR renames. Null when there is none.
   */
  findEntry(path: string): Promise<FileInfo | null>;
  /**
   * Streams a directory's entries, in no particular order, as batches: each batch non-empty and of at
   * most about a thousand entries, so memory stays bounded whatever the directory's size and a consumer
   * pays one await per batch rather than per entry. Throws not-found / not-dir.
   */
  list(path: string): AsyncIterable<FileInfo[]>;
  /**
   * The names of a directory's entries, batched as {@link list}, without their metadata: what NLST
   * needs, and cheaper where the medium keeps names apart from metadata (no stat per entry).
   * Throws not-found / not-dir.
   */
  listNames(path: string): AsyncIterable<string[]>;
  /** Opens a file for reading from `offset`. Throws not-found / is-dir. */
  read(path: string, offset?: number): Promise<FileReadable>;
  /**
   * Consumes `source` into the file and resolves with the number of bytes written once the data is
   * durable at its final name (flushed and closed). If `source` errors or ends prematurely
   * (destroyed), rejects and leaves no file passed off as complete.
   */
  write(path: string, source: UploadReadable, options?: WriteOptions): Promise<number>;
  mkdir(path: string): Promise<void>;
  /** Removes an empty directory. Throws not-empty / not-dir / not-found. */
  rmdir(path: string): Promise<void>;
  /** Removes a file. Throws is-dir / not-found. */
  delete(path: string): Promise<void>;
  /** Renames a file or directory, replacing an existing file at `to`. */
  rename(from: string, to: string): Promise<void>;
  setModifiedTime(path: string, mtime: Date): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  /** Measures the tree below `path` (quotas); bounded memory, not counting `path` itself. */
  usage(path: string): Promise<Usage>;
}

export type StorageErrorCode =
  | "not-found"
  | "exists"
  | "not-dir"
  | "is-dir"
  | "not-empty"
  | "permission"
  | "no-space"
  | "invalid-path"
  | "unsupported"
  | "io";

/** The only error a Storage throws; the message is safe to show a client. */
export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StorageError";
  }
}

/** Builds the Storage for one account's root; created once per login. */
export interface StorageFactory {
  forRoot(root: string): Promise<Storage>;
}
