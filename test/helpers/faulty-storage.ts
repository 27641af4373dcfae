/**
 * Fault injection for storage: a Storage wrapper that fails a chosen operation with ENOSPC, EIO or
 * EACCES, exactly as the local backend reports them (a StorageError `no-space`, `io` or `permission`
 * from an operation; a raw errno error from a read stream; a failing sink under a write), either at
 * once or after some bytes (read, write) or entries (list) have gone through; or holds one until
 * the test lets it go (a slow medium, at the moment a race needs).
 */
import { Readable, Transform, pipeline } from "node:stream";
import { LocalStorageFactory, toStorageError } from "../../src/storage/local.js";
import type { FileInfo, Storage, StorageCapabilities, StorageFactory, Usage, WriteOptions } from "../../src/storage/types.js";

export type FaultOperation =
  | "stat"
  | "list"
  | "read"
  | "write"
  | "mkdir"
  | "rmdir"
  | "delete"
  | "rename"
  | "setModifiedTime"
  | "chmod"
  | "usage";

/** Where an operation can be held (FaultPlan.hold). */
export type HoldPoint = FaultOperation | "write-end";

/** The injectable errors, named by the StorageError code each becomes. */
export type FaultError = "no-space" | "io" | "permission";

export const FAULT_ERRNO: Readonly<Record<FaultError, string>> = { "no-space": "ENOSPC", io: "EIO", permission: "EACCES" };

export interface Fault {
  op: FaultOperation;
  error: FaultError;
  /**
   * read and write: fail once this many bytes have gone through (mid-stream) instead of at open;
   * list: fail after this many entries. Undefined: fail at once.
   */
  after?: number;
  /** Only for this virtual path (for rename, either side) or the paths it matches. Default: every path. */
  path?: string | RegExp;
  /** How many times it fires before it is spent. Default: every time. */
  times?: number;
}

/** An errno error as fs would raise it (what the real backend's streams emit). */
export function errnoError(error: FaultError, syscall: string, subject: string): NodeJS.ErrnoException {
  const code = FAULT_ERRNO[error];
  return Object.assign(new Error(`${code}: injected fault, ${syscall} '${subject}'`), { code, syscall, errno: -1 });
}

/** The faults in force, shared by every storage a factory hands out; `fired` counts injections. */
export class FaultPlan {
  private faults: Fault[] = [];
  private holds: Array<{ op: HoldPoint; path: string; arrived(): void; gate: Promise<void> }> = [];
  fired = 0;

  /**
   * Holds the next `op` on `path` (for rename, either side) before it reaches the medium, or a
   * write once it has settled (`write-end`: done, or failed and cleaned up, not yet returned):
   * `reached` resolves once it waits, and it goes on when `release` is called.
   */
  hold(op: HoldPoint, path: string): { reached: Promise<void>; release(): void } {
    let arrived!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.holds.push({ op, path, arrived, gate });
    return { reached, release };
  }

  /** Waits at the hold set for `op` on `paths`, if any (once). */
  async pass(op: HoldPoint, ...paths: string[]): Promise<void> {
    const index = this.holds.findIndex((h) => h.op === op && paths.includes(h.path));
    if (index < 0) return;
    const [hold] = this.holds.splice(index, 1);
    hold.arrived();
    await hold.gate;
  }

  inject(fault: Fault): this {
    this.faults.push({ ...fault });
    return this;
  }

  clear(): void {
    this.faults = [];
    this.holds = [];
  }

  /** The fault to apply to `op` on `paths` now, consuming one of its `times`. */
  take(op: FaultOperation, ...paths: string[]): Fault | undefined {
    const index = this.faults.findIndex((f) => f.op === op && (f.times ?? Infinity) > 0 && paths.some((p) => matches(f.path, p)));
    if (index < 0) return undefined;
    const fault = this.faults[index];
    if (fault.times !== undefined) fault.times--;
    this.fired++;
    return fault;
  }
}

function matches(pattern: Fault["path"], p: string): boolean {
  if (pattern === undefined) return true;
  return typeof pattern === "string" ? pattern === p : pattern.test(p);
}

/**
 * Passes `source` through until `limit` bytes have gone by, then fails with `error()`. Destroying the
 * result destroys `source` (and the reverse), as the storage contract expects of its streams.
 */
function failAfter(source: Readable, limit: number, error: () => Error): Readable {
  let seen = 0;
  const gate = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const room = limit - seen;
      if (chunk.length < room) {
        seen += chunk.length;
        callback(null, chunk);
        return;
      }
      if (room > 0) this.push(chunk.subarray(0, room));
      seen = limit;
      callback(error());
    },
  });
  pipeline(source, gate, () => undefined);
  return gate;
}

export class FaultyStorage implements Storage {
  constructor(
    readonly inner: Storage,
    readonly plan: FaultPlan,
  ) {}

  get capabilities(): StorageCapabilities {
    return this.inner.capabilities;
  }

  get location(): string {
    return this.inner.location;
  }

  isReserved(path: string): boolean {
    return this.inner.isReserved(path);
  }

  /** Throws the StorageError the backend would, when a fault applies to `op` at once; waits at a hold. */
  private async check(op: FaultOperation, subject: string, ...paths: string[]): Promise<void> {
    await this.plan.pass(op, ...paths);
    const fault = this.plan.take(op, ...paths);
    if (fault) throw toStorageError(errnoError(fault.error, op, subject), subject);
  }

  async stat(path: string): Promise<FileInfo> {
    await this.check("stat", path, path);
    return this.inner.stat(path);
  }

  async find(path: string): Promise<FileInfo | null> {
    await this.check("stat", path, path);
    return this.inner.find(path);
  }

  async findEntry(path: string): Promise<FileInfo | null> {
    await this.check("stat", path, path);
    return this.inner.findEntry(path);
  }

  list(path: string): AsyncIterable<FileInfo[]> {
    return this.failingListing(path, this.inner.list(path));
  }

  listNames(path: string): AsyncIterable<string[]> {
    return this.failingListing(path, this.inner.listNames(path));
  }

  /** A listing under a "list" fault: fails at once, or after `after` items (the ones before still go out). */
  private async *failingListing<T>(path: string, batches: AsyncIterable<T[]>): AsyncIterable<T[]> {
    const fault = this.plan.take("list", path);
    const fail = () => toStorageError(errnoError(fault!.error, "scandir", path), path);
    if (fault && fault.after === undefined) throw fail();
    let count = 0;
    for await (const batch of batches) {
      if (fault && count + batch.length > fault.after!) {
        const room = fault.after! - count;
        if (room > 0) yield batch.slice(0, room);
        throw fail();
      }
      count += batch.length;
      yield batch;
    }
    if (fault && count >= fault.after!) throw fail();
  }

  async read(path: string, offset?: number): Promise<Readable> {
    const fault = this.plan.take("read", path);
    if (fault && fault.after === undefined) throw toStorageError(errnoError(fault.error, "open", path), path);
    const stream = await this.inner.read(path, offset);
    if (!fault) return stream;
    return failAfter(stream, fault.after!, () => errnoError(fault.error, "read", path));
  }

  async write(path: string, source: Readable, options?: WriteOptions): Promise<number> {
    const fault = this.plan.take("write", path);
    if (fault && fault.after === undefined) {
      source.destroy();
      throw toStorageError(errnoError(fault.error, "open", path), path);
    }
    // Mid-stream: the bytes past the limit fail as a full disk would fail the backend's own writes.
    const fed = fault ? failAfter(source, fault.after!, () => errnoError(fault.error, "write", path)) : source;
    try {
      return await this.inner.write(path, fed, options);
    } finally {
      await this.plan.pass("write-end", path);
    }
  }

  async mkdir(path: string): Promise<void> {
    await this.check("mkdir", path, path);
    return this.inner.mkdir(path);
  }

  async rmdir(path: string): Promise<void> {
    await this.check("rmdir", path, path);
    return this.inner.rmdir(path);
  }

  async delete(path: string): Promise<void> {
    await this.check("delete", path, path);
    return this.inner.delete(path);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.check("rename", `${from} -> ${to}`, from, to);
    return this.inner.rename(from, to);
  }

  async setModifiedTime(path: string, mtime: Date): Promise<void> {
    await this.check("setModifiedTime", path, path);
    return this.inner.setModifiedTime(path, mtime);
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.check("chmod", path, path);
    return this.inner.chmod(path, mode);
  }

  async usage(path: string): Promise<Usage> {
    await this.check("usage", path, path);
    return this.inner.usage(path);
  }
}

/** Hands out {@link FaultyStorage} over another factory's storages (local disk by default), all under one plan. */
export class FaultyStorageFactory implements StorageFactory {
  readonly plan = new FaultPlan();

  constructor(private readonly inner: StorageFactory = new LocalStorageFactory()) {}

  async forRoot(root: string): Promise<Storage> {
    return new FaultyStorage(await this.inner.forRoot(root), this.plan);
  }
}
