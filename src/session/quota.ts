/**
 * Quotas per account (bytes and entries): the one place usage arithmetic happens.
 *
 * A QuotaTracker exists per account per node while some command of that account is using it (an
 * upload in flight, a DELE…) and is forgotten when idle, so the next command reloads the account's
 * limits and tracked usage from the store. While it lives, it keeps the usage in memory (updated
 * with every change it records, which also goes to the store with `addUsage`) plus what uploads in
 * flight have added so far, so concurrent uploads of the same account on this node are checked
 * against one figure. Usage is measured (Storage.usage("/") then setUsage) when it is still unknown
 * and the account has a quota; an account with neither a quota nor a measured usage is not tracked
 * at all (no extra stat, no counter).
 *
 * One exception to forgetting: the tracker of such an untracked account (it holds nothing but the
 * fact that there is no limit) is kept while idle, and reused only while the store's revision
 * (AccountStore.revision) shows no change since it read the account. A quota set meanwhile (the
 * CLI, another node on the same database) is seen by the next command exactly as before; an
 * unlimited account's uploads skip reading the account each time. And another: a tracker holding
 * changes the store could not take (a full disk under the database) is kept while idle, and they
 * are added to the store's figure on a reload and to the next write, until one succeeds; forgotten,
 * what it counted would be free for good (a restart still loses it).
 *
 * Changes are recorded from what storage reports, not from what the client sent: an upload's delta
 * is the target file's state after the write (whatever happened: completed, refused, aborted, a
 * partial file kept or removed, an atomic replace that kept the old version) minus its state
 * before. Limitations, accepted: changes made outside this node (the disk directly, another node)
 * are not seen until the usage is measured again; a DELE or RNTO through a symlink counts the
 * target's size; concurrent commands on the same path may record overlapping deltas.
 */
import { Transform, type TransformCallback } from "node:stream";
import { AccountError, type Account, type AccountStore, type Usage } from "../accounts/types.js";
import type { UploadAllowance } from "../data/upload-allowance.js";
import type { Logger } from "../observe/logger.js";
import { FtpError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { FileInfo, Storage } from "../storage/types.js";
import type { Session } from "./session.js";

/** A path's state for usage: absent (null) or an entry of `size` bytes (0 unless a file). */
export type EntryState = { size: number } | null;

/** What an upload writes: from `offset` (REST), or at the end (APPE). */
export interface UploadWrite {
  offset: number;
  append: boolean;
}

/** The state of `path` for usage: null when absent; a directory or link counts 0 bytes. */
export async function entryState(fs: Storage, path: string): Promise<EntryState> {
  return stateOf(await fs.find(path));
}

/**
 * The state of the directory entry `path` names, a final symlink not followed: what a DELE or a
 * rename removes (a link is an entry of 0 bytes, as usage measures it, wherever it points).
 */
export async function ownEntryState(fs: Storage, path: string): Promise<EntryState> {
  return stateOf(await fs.findEntry(path));
}

/** `a + b`, clamped at 0 like the store's addUsage. */
function sum(a: Usage, b: Usage): Usage {
  return { bytes: Math.max(0, a.bytes + b.bytes), files: Math.max(0, a.files + b.files) };
}

/** The state of a stat result (null for absent). */
export function stateOf(info: FileInfo | null): EntryState {
  return info === null ? null : { size: info.type === "file" ? info.size : 0 };
}

/**
 * An upload copied without a stream reserves a quarter of the room left at a time, and all of it
 * only below this: the steps grow short only near the quota.
 */
const ROOM_SHARE = 4;
const MIN_SHARE = 64 * 1024;

const trackers = new WeakMap<object, Map<string, QuotaTracker>>();
/** Trackers are kept idle (see the module's comment) only while a node's registry holds fewer. */
const MAX_IDLE_TRACKERS = 1000;

export class QuotaTracker {
  private holders = 0;
  private ready!: Promise<void>;
  private quotaBytes: number | null = null;
  private quotaFiles: number | null = null;
  /** Tracked usage; null: not tracked (no quota and never measured, or the account is gone). */
  private usage: Usage | null = null;
  /** Why measuring failed: growing commands are refused until it succeeds (no quota bypass). */
  private loadError: unknown = null;
  /** Bytes uploads in flight have added so far (beyond what they overwrite). */
  private inFlightBytes = 0;
  /** New entries being created (uploads of new files in flight, MKD under way). */
  private reservedFiles = 0;
  /** The store's revision just before this tracker read the account; NaN: not read by it (login's). */
  private revision = Number.NaN;
  /**
   * Changes this tracker counted that the store has not taken (a write failed: its disk full, say).
   * They go with the next change's write, and onto the store's figure when the account is read again;
   * such a tracker is not forgotten while idle: forgotten, the uploads it counted would be free for
   * good. A delta, not a whole figure: other nodes' changes meanwhile must not be written over.
   */
  private unstored: Usage | null = null;

  private constructor(
    private readonly registry: Map<string, QuotaTracker>,
    private readonly accounts: AccountStore,
    private readonly log: Logger,
    readonly name: string,
  ) {}

  /**
   * The tracker of the session's account, loaded (and its usage measured when unknown and the
   * account has a quota). Call `release()` when done, on every path. `fresh`: the account as the
   * store returned it within this command (login), so a new tracker need not read it again.
   */
  static async open(session: Session, fresh?: Account): Promise<QuotaTracker> {
    const owner = session.services;
    let registry = trackers.get(owner);
    if (!registry) {
      registry = new Map();
      trackers.set(owner, registry);
    }
    const name = session.account!.name;
    let tracker = registry.get(name);
    let carried: Usage | null = null;
    if (tracker && tracker.holders === 0 && !tracker.unchanged()) {
      // Kept idle, now stale: the account is read again, but what the store lacks is kept.
      carried = tracker.unstored;
      tracker = undefined;
    }
    if (!tracker) {
      tracker = new QuotaTracker(registry, owner.accounts, owner.logger, name);
      registry.set(name, tracker);
      tracker.ready = tracker.load(session.fs, fresh, carried);
    }
    tracker.holders++;
    try {
      await tracker.ready;
    } catch (err) {
      tracker.release();
      throw err;
    }
    return tracker;
  }

  release(): void {
    if (--this.holders === 0 && this.registry.get(this.name) === this && !this.keptIdle()) this.registry.delete(this.name);
  }

  /**
   * Whether to keep this tracker once idle (see the module's comment): the account has no quota and
   * no measured usage, so there is no usage in memory that could go stale, only that fact; and the
   * registry stays bounded.
   */
  private keptIdle(): boolean {
    if (this.unstored) return true;
    return !this.tracking && this.quotaBytes === null && this.quotaFiles === null && this.loadError === null && this.registry.size <= MAX_IDLE_TRACKERS;
  }

  /** Whether the store shows no change since this tracker read the account. */
  private unchanged(): boolean {
    return this.revision === this.accounts.revision();
  }

  /** Whether this account's usage is tracked (changes are recorded). */
  get tracking(): boolean {
    return this.usage !== null;
  }

  /** The usage as this node tracks it, including nothing in flight. */
  get current(): Usage | null {
    return this.usage && { ...this.usage };
  }

  /** `carried`: what the tracker this one replaces counted and the store lacks (see `unstored`). */
  private async load(fs: Storage, fresh?: Account, carried: Usage | null = null): Promise<void> {
    // Read before the account, so a change made in between shows as a newer revision next time.
    if (!fresh) this.revision = this.accounts.revision();
    const account = fresh ?? (await this.accounts.get(this.name));
    if (!account) return;
    this.quotaBytes = account.quotaBytes;
    this.quotaFiles = account.quotaFiles;
    this.usage = account.usage;
    // An unmeasured usage is measured below, which counts everything.
    if (this.usage && carried) {
      this.usage = sum(this.usage, carried);
      this.unstored = carried;
    }
    if (this.usage !== null || (this.quotaBytes === null && this.quotaFiles === null)) return;
    const started = performance.now();
    let measured: Usage;
    try {
      measured = await fs.usage("/");
    } catch (err) {
      this.loadError = err;
      this.log.warn({ user: this.name, err: (err as Error).message }, "usage could not be measured; uploads and MKD refused until it can");
      return;
    }
    this.usage = measured;
    this.log.info({ user: this.name, ...measured, ms: Math.round(performance.now() - started) }, "usage measured");
    // Not stored, the usage stays unknown there: the next tracker measures it again.
    await this.accounts.setUsage(this.name, measured).catch((err: Error) => this.log.error({ user: this.name, err: err.message }, "measured usage could not be stored"));
  }

  /** Adds `delta`, and what earlier writes could not store, to the store's usage; keeps it all when that fails too. */
  private async store(delta: Usage): Promise<void> {
    // Two deltas: added as they are (a usage is clamped at 0, a delta may be negative).
    const total = this.unstored ? { bytes: this.unstored.bytes + delta.bytes, files: this.unstored.files + delta.files } : delta;
    try {
      await this.accounts.addUsage(this.name, total);
      this.unstored = null;
    } catch (err) {
      // The account is gone: nothing to store it into, ever.
      this.unstored = err instanceof AccountError && err.code === "not-found" ? null : total;
      this.log.error({ user: this.name, unstored: this.unstored, err: (err as Error).message }, "usage change could not be stored; this node keeps counting it");
    }
  }

  /** Refuses growing commands while the usage of a limited account is unknown. */
  private checkMeasured(): void {
    if (this.loadError !== null) throw new FtpError(Reply.LocalError, "Quota usage could not be measured; try again later.");
  }

  /** Refuses a new entry when the files quota is reached (counting creations under way). */
  private reserveEntry(): void {
    this.checkMeasured();
    if (this.usage && this.quotaFiles !== null && this.usage.files + this.reservedFiles >= this.quotaFiles) {
      throw new FtpError(Reply.ExceededStorage, `Quota exceeded: limit of ${this.quotaFiles} files and directories reached.`);
    }
    this.reservedFiles++;
  }

  /** @internal Bytes an upload may still add (beyond `credit` bytes it overwrites); null: no byte quota. */
  bytesLeft(): number | null {
    if (!this.usage || this.quotaBytes === null) return null;
    return this.quotaBytes - this.usage.bytes - this.inFlightBytes;
  }

  /** Applies a change to the tracked usage, here and in the store. Never throws: the change happened. */
  private async record(delta: Usage): Promise<void> {
    if (!this.usage || (delta.bytes === 0 && delta.files === 0)) return;
    // Clamped at 0 like the store's addUsage.
    this.usage = sum(this.usage, delta);
    await this.store(delta);
  }

  /** Measures again when a change could not be observed (the target could not be stat'ed). */
  private async resync(fs: Storage): Promise<void> {
    if (!this.usage) return;
    let measured: Usage;
    try {
      measured = await fs.usage("/");
    } catch (err) {
      this.log.error({ user: this.name, err: (err as Error).message }, "usage resync failed");
      return;
    }
    this.usage = measured;
    try {
      await this.accounts.setUsage(this.name, measured);
      this.unstored = null; // the measurement counts everything
    } catch (err) {
      this.log.error({ user: this.name, err: (err as Error).message }, "usage resync could not be stored");
    }
  }

  /**
   * Checks an upload before its 150: 552 when the account is already at or over its byte quota
   * (what the upload overwrites counts as room), or, for a new file, at its files quota. The
   * returned UploadQuota must be settled (or abandoned) on every path.
   */
  beginUpload(fs: Storage, path: string, before: EntryState, write: UploadWrite): UploadQuota {
    this.checkMeasured();
    // Bytes of the existing file the write lands on rather than adds: a replace overwrites all of
    // it, REST n overwrites from n on (negative when n is past the end: the hole counts), APPE none.
    const credit = before === null || write.append ? 0 : before.size - write.offset;
    const left = this.bytesLeft();
    if (left !== null && left + Math.max(0, credit) <= 0) {
      throw new FtpError(Reply.ExceededStorage, `Quota exceeded: storage limit of ${this.quotaBytes} bytes reached.`);
    }
    const newFile = before === null;
    if (newFile) this.reserveEntry();
    return new UploadQuota(this, fs, path, before, credit, newFile, this.quotaBytes !== null && this.usage !== null);
  }

  /** @internal UploadQuota's counter: whether `delta` more bytes fit; reserves them when they do. */
  growInFlight(delta: number): boolean {
    const left = this.bytesLeft();
    if (left !== null && delta > left) return false;
    this.inFlightBytes += delta;
    return true;
  }

  /** @internal Ends an upload: releases its reservation and records what storage shows. */
  finishUpload(growth: number, newFile: boolean, delta: Usage | null): Promise<void> {
    this.inFlightBytes -= growth;
    if (newFile) this.reservedFiles--;
    return delta ? this.record(delta) : Promise.resolve();
  }

  /** @internal */
  syncAfterUnknown(fs: Storage): Promise<void> {
    return this.resync(fs);
  }

  /** @internal The 552 of a byte quota crossed during an upload. */
  exceededError(): FtpError {
    return new FtpError(Reply.ExceededStorage, `Quota exceeded: storage limit of ${this.quotaBytes} bytes reached; upload stopped.`);
  }

  /** MKD: checked against the files quota, +1 entry once `create` succeeded. */
  async createEntry(create: () => Promise<void>): Promise<void> {
    this.reserveEntry();
    try {
      await create();
      await this.record({ bytes: 0, files: 1 });
    } finally {
      this.reservedFiles--;
    }
  }

  /** DELE, RMD: −1 entry and its bytes once `remove` succeeded. `removed` is its state before (null: unknown, e.g. a dangling link). */
  async removeEntry(removed: EntryState, remove: () => Promise<void>): Promise<void> {
    await remove();
    await this.record({ bytes: -(removed?.size ?? 0), files: -1 });
  }

  /**
   * RNTO: when the rename replaced an existing entry (`replaced`, its state before), that entry's
   * bytes and count go; `rename` resolves whether it moved anything (two names of one file: no).
   */
  async rename(replaced: EntryState, rename: () => Promise<boolean>): Promise<void> {
    const moved = await rename();
    if (moved && replaced !== null) await this.record({ bytes: -replaced.size, files: -1 });
  }
}

/** One upload's quota: the counter its bytes pass through and the settlement of its delta. */
export class UploadQuota implements UploadAllowance {
  /** A Transform refusing the chunk that would cross the byte quota; null when there is none. */
  readonly counter: Transform | null;
  /** Whether the counter stopped the upload. */
  exceeded = false;
  private written = 0;
  /** Bytes added beyond what the write overwrites, reserved in the tracker. */
  private growth = 0;
  private settled = false;

  constructor(
    private readonly tracker: QuotaTracker,
    private readonly fs: Storage,
    private readonly path: string,
    private readonly before: EntryState,
    private readonly credit: number,
    private readonly newFile: boolean,
    counted: boolean,
  ) {
    this.counter = counted ? new QuotaCounter(this) : null;
  }

  /** Accounts for `bytes` more written; false (and `exceeded`) when they would cross the quota. */
  grow(bytes: number): boolean {
    const growth = Math.max(0, this.written + bytes - this.credit);
    if (growth > this.growth && !this.tracker.growInFlight(growth - this.growth)) {
      this.exceeded = true;
      return false;
    }
    this.written += bytes;
    this.growth = Math.max(this.growth, growth);
    return true;
  }

  /** The reply for an upload the counter stopped. */
  error(): FtpError {
    return this.tracker.exceededError();
  }

  /**
   * {@inheritDoc UploadAllowance.allow} What is granted is reserved as written at once (grow), so the
   * reservation may run ahead of the file until the upload settles. Near the quota that is a share
   * of the room, not all of it: the account's other uploads must still find room to start in.
   */
  allow(max: number): number {
    const left = this.tracker.bytesLeft();
    const room = left === null ? max : Math.max(0, left + this.credit + this.growth - this.written);
    const share = room <= MIN_SHARE ? room : Math.max(MIN_SHARE, Math.floor(room / ROOM_SHARE));
    const fit = Math.min(max, share);
    return fit > 0 && this.grow(fit) ? fit : 0;
  }

  /** {@inheritDoc UploadAllowance.refuse} */
  refuse(): FtpError {
    this.exceeded = true;
    return this.error();
  }

  /**
   * After the write settled (resolved or rejected): records the target's change, from its state now
   * against its state before, and releases the reservation. Call before the final reply, so a client
   * that sees 226/552 sees the usage already updated. Never throws.
   */
  async settle(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    if (!this.tracker.tracking) {
      await this.tracker.finishUpload(this.growth, this.newFile, null);
      return;
    }
    let after: EntryState;
    try {
      after = await entryState(this.fs, this.path);
    } catch {
      await this.tracker.finishUpload(this.growth, this.newFile, null);
      await this.tracker.syncAfterUnknown(this.fs);
      return;
    }
    const before = this.before;
    await this.tracker.finishUpload(this.growth, this.newFile, {
      bytes: (after?.size ?? 0) - (before?.size ?? 0),
      files: (after ? 1 : 0) - (before ? 1 : 0),
    });
  }

  /** Releases the reservation of an upload that never started writing (no data connection…). */
  abandon(): void {
    if (this.settled) return;
    this.settled = true;
    void this.tracker.finishUpload(this.growth, this.newFile, null);
  }
}

/** Counts the bytes of an upload as stored; errors with the 552 instead of passing the crossing chunk. */
class QuotaCounter extends Transform {
  constructor(private readonly upload: UploadQuota) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.upload.grow(chunk.length)) done(null, chunk);
    else done(this.upload.error());
  }
}

/** Runs `action` with the session account's tracker, released on every path. */
export async function withQuota<T>(session: Session, action: (quota: QuotaTracker) => Promise<T>): Promise<T> {
  const quota = await QuotaTracker.open(session);
  try {
    return await action(quota);
  } finally {
    quota.release();
  }
}

/**
 * Hook for login (PASS): measures the account's usage when it is still unknown and the account has
 * a quota, so the first upload does not pay for it. Commands measure it anyway when needed (and
 * wait for a measurement already under way). Never throws.
 */
export async function measureUsageAtLogin(session: Session): Promise<void> {
  try {
    // The account was read by the PASS that calls this, a moment ago.
    (await QuotaTracker.open(session, session.account ?? undefined)).release();
  } catch (err) {
    session.log.warn({ err: (err as Error).message }, "usage check at login failed");
  }
}
