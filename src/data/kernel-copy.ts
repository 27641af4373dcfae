/**
 * Zero-copy transfers: the kernel moves a file's bytes to a data socket (sendfile(2)) or a data
 * socket's bytes into a file (splice(2)) by itself, on libuv's thread pool, so they never pass
 * through JavaScript. This is what lets a download or upload run at the speed of the C servers
 * (which send with sendfile too) instead of paying two user-space copies and a buffer per chunk.
 * A small copy is first tried at once on the event loop, timed (see {@link COPY_NOW_BYTES}).
 *
 * The addon (native/kernel_copy.c, see src/native.ts) exists on Linux only; without it, or for a
 * connection it cannot serve (TLS, TYPE A, a throttled account), transfer.ts moves the bytes itself. Whatever the path, the caller sees the same
 * promise: it settles only once the kernel has let go of the file descriptor.
 */
import type { Socket } from "node:net";
import { constants as osConstants } from "node:os";
import { errnoName, nativeAddon } from "../native.js";
import type { LocalFile } from "../storage/types.js";
import { SyncPacing } from "../sync-pacing.js";

type Job = object;
type Done = (errno: number, bytes: number, full: boolean) => void;
type Start = (socketFd: number, fileFd: number, position: number, limit: number, stallMs: number, done: Done) => Job;
/** [errno, bytes moved, state: 0 goes on, 1 ended, 2 full]: see native/copy_now.c. */
type CopyNow = [errno: number, bytes: number, state: number];

interface KernelCopyAddon {
  sendFile: Start;
  receiveFile: Start;
  cancel(job: Job): void;
  progress(job: Job): number;
  inFlight(): number;
  sendNow(socketFd: number, fileFd: number, position: number, maxBytes: number): CopyNow;
  receiveNow(socketFd: number, fileFd: number, position: number, limit: number, maxBytes: number): CopyNow;
  /** native/socket_options.c (absent from an addon built before it). */
  endWriting?(socketFd: number): number;
}

const addon = nativeAddon<KernelCopyAddon>();

/** Whether this process can copy through the kernel at all (the addon loaded). */
export const kernelCopyAvailable = addon !== null;

/** Kernel copies started whose promise has not settled yet (for leak checks). */
export function kernelCopiesInFlight(): number {
  return addon?.inFlight() ?? 0;
}

/**
 * Failures of a kernel copy before any byte moved that say "not here, not now", not "this transfer
 * failed": no sendfile/splice on this file system, or no descriptor or memory to spare for the
 * copy's dup and pipe. The same transfer then goes through user space instead.
 */
const KERNEL_COPY_UNAVAILABLE = new Set(["EINVAL", "ENOSYS", "EOPNOTSUPP", "EMFILE", "ENFILE", "ENOMEM"]);

/** Whether `err` is a kernel copy that failed as {@link KERNEL_COPY_UNAVAILABLE} says: fall back. */
export function kernelCopyUnavailable(err: unknown): boolean {
  return err instanceof KernelCopyError && err.bytes === 0 && KERNEL_COPY_UNAVAILABLE.has(err.code);
}

/** Failure of a kernel copy, shaped like Node's system errors (`code`, `errno`, `syscall`). */
export class KernelCopyError extends Error {
  readonly code: string;
  constructor(
    readonly errno: number,
    readonly syscall: "sendfile" | "splice",
    /** Bytes moved before the failure. */
    readonly bytes: number,
  ) {
    const code = errnoName(errno);
    super(`${syscall} failed: ${code}`);
    this.code = code;
    this.name = "KernelCopyError";
  }
}

/**
 * The socket's file descriptor when the kernel may copy to or from it: a plain TCP socket whose
 * bytes are all still in the kernel (nothing read into Node's buffers). TLS sockets never qualify:
 * their bytes must be encrypted in user space.
 */
export function kernelSocketFd(socket: Socket): number | null {
  if (addon === null || "encrypted" in socket) return null;
  if (socket.readableLength > 0 || socket.bytesRead > 0) return null;
  // Node's handle must not be reading: what it took in would be missing from a splice. Data
  // sockets are created paused (the port pool's pauseOnConnect, the active connector's pause()).
  const handle = (socket as unknown as { _handle?: { fd?: number; reading?: boolean } })._handle;
  if (!handle || handle.reading === true || typeof handle.fd !== "number" || handle.fd < 0) return null;
  return handle.fd;
}

/**
 * Sends the FIN at once (shutdown(2), after what the kernel holds) when Node holds nothing more to
 * write on this plain socket; true when done. Node's end() does the same a turn of the event loop
 * later (~30 µs that a small download's 226 waited for). False: use end().
 */
export function endWritingNow(socket: Socket): boolean {
  if (typeof addon?.endWriting !== "function" || socket.writableLength > 0) return false;
  // Written by Node and not yet taken by the kernel: libuv's queue must be empty too.
  const queued = (socket as unknown as { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize;
  const fd = kernelSocketFd(socket);
  return fd !== null && queued === 0 && addon.endWriting(fd) === 0;
}

/** Bytes moved through the kernel per socket (in progress or done), for STAT and the transfer log. */
const movedBySocket = new WeakMap<Socket, { direction: "send" | "receive"; bytes(): number }>();

/**
 * Bytes that went through the socket so far, in each direction: Node's own counters plus what the
 * kernel moved by itself (which Node never sees); `zeroCopy` tells whether the kernel did.
 */
export function socketBytes(socket: Socket): { in: number; out: number; zeroCopy: boolean } {
  const kernel = movedBySocket.get(socket);
  const moved = kernel?.bytes() ?? 0;
  return {
    in: socket.bytesRead + (kernel?.direction === "receive" ? moved : 0),
    out: socket.bytesWritten + (kernel?.direction === "send" ? moved : 0),
    zeroCopy: kernel !== undefined,
  };
}

/** What a copy moved; `full`: it stopped at its limit with more bytes waiting in the socket. */
export interface Copied {
  bytes: number;
  full: boolean;
}

/**
 * A download with at most this many bytes left, and the first this many bytes of an upload, are
 * first copied at once on the event loop (copy_now.c): for a small file in the page cache or an
 * upload already waiting in the socket, that is microseconds, against a job on the thread pool (a
 * poll handle, a timer, an upload's pipe, two thread hand-offs). Each such copy is timed, and a slow
 * one sends the next copies to the pool (SyncPacing): a cold file on a slow disk blocks the node once.
 */
const COPY_NOW_BYTES = 128 * 1024;
/** The states copy_now.c reports besides "goes on". */
const NOW_ENDED = 1;
const NOW_FULL = 2;
const pacing = new SyncPacing();

/**
 * Runs one copy on a socket that {@link kernelSocketFd} accepted: what can be done at once first
 * (see {@link COPY_NOW_BYTES}), the rest as a job on the thread pool. The socket's own idle timeout
 * is suspended while the job runs (Node sees no activity on it) and enforced by the addon instead;
 * the job is cancelled when `signal` aborts or the socket closes. Settles only once the kernel has
 * let go. Copies after the first on one socket (an upload's quota steps) add to its {@link socketBytes}.
 */
function run(direction: "send" | "receive", socket: Socket, file: LocalFile, signal: AbortSignal, limit = -1): Promise<Copied> {
  const native = addon!;
  const socketFd = kernelSocketFd(socket);
  if (socketFd === null) return Promise.reject(new Error("socket not eligible for a kernel copy"));
  const syscall = direction === "send" ? "sendfile" : "splice";
  // Bytes of earlier copies on this socket.
  const earlier = movedBySocket.get(socket)?.bytes() ?? 0;
  const small = direction === "receive" || (file.size !== undefined && file.size - file.position < COPY_NOW_BYTES);
  // Bytes of this copy done at once, before the job.
  let now = 0;
  if (small && !signal.aborted && !socket.destroyed && pacing.takeSynchronous()) {
    const [errno, bytes, state] = pacing.timed(() =>
      direction === "send"
        ? native.sendNow(socketFd, file.fd, file.position, COPY_NOW_BYTES)
        : native.receiveNow(socketFd, file.fd, file.position, limit, COPY_NOW_BYTES),
    );
    if (errno !== 0 || state === NOW_ENDED || state === NOW_FULL) {
      movedBySocket.set(socket, { direction, bytes: () => earlier + bytes });
      if (errno !== 0) return Promise.reject(new KernelCopyError(errno, syscall, bytes));
      return Promise.resolve({ bytes, full: state === NOW_FULL });
    }
    now = bytes;
  }
  const stallMs = socket.timeout ?? 0;
  socket.setTimeout(0);
  return new Promise((resolve, reject) => {
    let finished = false;
    let total = now;
    const cancel = () => {
      if (!finished) native.cancel(job);
    };
    const done: Done = (errno, bytes, full) => {
      finished = true;
      total = now + bytes;
      signal.removeEventListener("abort", cancel);
      socket.off("close", cancel);
      if (stallMs > 0 && !socket.destroyed) socket.setTimeout(stallMs);
      if (errno === 0) resolve({ bytes: total, full });
      else reject(new KernelCopyError(errno, syscall, total));
    };
    const start = direction === "send" ? native.sendFile : native.receiveFile;
    let job: Job;
    try {
      job = start(socketFd, file.fd, file.position + now, limit < 0 ? -1 : limit - now, stallMs, done);
    } catch (err) {
      // Nothing started (no descriptor or pipe to spare): the socket is as it was after what moved at once.
      if (stallMs > 0) socket.setTimeout(stallMs);
      if (now > 0) movedBySocket.set(socket, { direction, bytes: () => earlier + now });
      const errno = osConstants.errno[(err as NodeJS.ErrnoException).code as keyof typeof osConstants.errno] ?? osConstants.errno.EIO;
      reject(new KernelCopyError(errno, syscall, now));
      return;
    }
    movedBySocket.set(socket, { direction, bytes: () => earlier + (finished ? total : now + native.progress(job)) });
    if (signal.aborted || socket.destroyed) cancel();
    signal.addEventListener("abort", cancel, { once: true });
    socket.once("close", cancel);
  });
}

/**
 * Sends the file from `file.position` to its end; resolves with the bytes sent (the socket is not
 * ended). Rejects with a {@link KernelCopyError}.
 */
export async function sendFileToSocket(socket: Socket, file: LocalFile, signal: AbortSignal): Promise<number> {
  return (await run("send", socket, file, signal)).bytes;
}

/**
 * Writes what the peer sends into the file from `file.position`, until its FIN or, with a `limit`,
 * until that many bytes are written and the peer has more (`full`; the rest stays in the socket).
 * Rejects with a {@link KernelCopyError}.
 */
export function receiveSocketToFile(socket: Socket, file: LocalFile, signal: AbortSignal, limit?: number): Promise<Copied> {
  return run("receive", socket, file, signal, limit);
}
