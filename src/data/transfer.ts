/**
 * The transfer pump: moves bytes between storage and the data socket with backpressure, converting
 * line endings for TYPE A, metering them through the account's bandwidth throttle (wire bytes) and
 * quota counter (stored bytes), and stops on abort or stall. A stage that is not needed (binary
 * type, unlimited account) is not inserted at all, and when none is, a local file moves without a
 * stream: through the kernel (kernel-copy.ts) or, over TLS, through reused buffers (downloads
 * here, uploads in tls-receive.ts).
 */
import { read } from "node:fs";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { pipeline as pipelineCallback, Readable, type Transform } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import type { FileReadable, LocalFile, UploadReadable } from "../storage/types.js";
import { AsciiDecoder, AsciiEncoder } from "./ascii.js";
import { endWritingNow, kernelCopyUnavailable, kernelSocketFd, receiveSocketToFile, sendFileToSocket, type Copied } from "./kernel-copy.js";
import { receiveTlsToFile, tlsReceiveAvailable } from "./tls-receive.js";
import { QUOTA_STEP, type UploadAllowance } from "./upload-allowance.js";

/** Buffer size of a download pumped through user space (two per transfer, reused). */
const PUMP_CHUNK = 1024 * 1024;

/**
 * Sends `source` to the client and resolves once every byte is handed to the kernel and FIN sent.
 * `throttle` meters the bytes as they go on the wire (after TYPE A conversion). A binary,
 * unthrottled download of a local file is sent without a stream: by the kernel itself (sendfile)
 * on a plain socket, unless `zeroCopy` is off; else (TLS) from two reused buffers.
 */
export async function sendToClient(
  source: FileReadable,
  socket: Socket,
  ascii: boolean,
  signal: AbortSignal,
  throttle: Transform | null = null,
  zeroCopy = true,
): Promise<void> {
  const file = ascii || throttle ? undefined : source.localFile;
  // A REST offset at or past the end: nothing to send (and no copy to start at a position the file
  // system may refuse, past its largest file).
  if (file?.size !== undefined && file.position >= file.size) {
    await endSending(socket);
    return;
  }
  if (file) {
    if (zeroCopy && kernelSocketFd(socket) !== null) {
      try {
        await sendFileToSocket(socket, file, signal);
        await endSending(socket);
        return;
      } catch (err) {
        if (!kernelCopyUnavailable(err)) throw err;
      }
    }
    await pumpLocalFile(file, socket, signal);
    return;
  }
  const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream> = [source];
  if (ascii) stages.push(new AsciiEncoder());
  if (throttle) stages.push(throttle);
  stages.push(socket);
  await pipeline(stages, { signal });
}

/**
 * Sends an open local file from its position to EOF through user space (a TLS socket must encrypt
 * the bytes), then ends the socket: one buffer is read from the file while the other is written,
 * and a buffer is reused only once the socket has taken it. A read stream's fresh buffer per chunk
 * made the garbage collector the largest cost of FTPS downloads.
 */
async function pumpLocalFile(file: LocalFile, socket: Socket, signal: AbortSignal): Promise<void> {
  const size = Math.min(PUMP_CHUNK, Math.max(64 * 1024, (file.size ?? PUMP_CHUNK) - file.position));
  const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
  let position = file.position;
  let current = 0;
  let reading = readAt(file.fd, buffers[current], position);
  try {
    for (;;) {
      const bytes = await reading;
      if (bytes === 0) break;
      signal.throwIfAborted();
      position += bytes;
      const chunk = bytes === size ? buffers[current] : buffers[current].subarray(0, bytes);
      current ^= 1;
      reading = readAt(file.fd, buffers[current], position);
      await writeChunk(socket, chunk);
    }
  } finally {
    // The descriptor is closed once this returns: no read may still be running on it.
    await reading.catch(() => 0);
  }
  await endSending(socket);
}

/**
 * Resolves once the socket has handed `chunk` to the kernel; rejects if the socket fails or is
 * destroyed first (Node calls back without an error for a socket destroyed without one).
 */
function writeChunk(socket: Socket, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.write(chunk, (err) => (err ? reject(err) : socket.destroyed ? reject(new Error("data connection closed")) : resolve())),
  );
}

/** Sends FIN once everything written is handed to the kernel; resolves when that is done. */
async function endSending(socket: Socket): Promise<void> {
  if (endWritingNow(socket)) return;
  socket.end();
  await finished(socket, { readable: false });
}

/** One read(2) at `position` on the thread pool; resolves with the bytes read (0 at EOF). */
function readAt(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, 0, buffer.length, position, (err, bytes) => (err ? reject(err) : resolve(bytes))));
}

/** What an upload's bytes pass through between the socket and storage. */
export interface UploadStages {
  /** Meters wire bytes (before TYPE A conversion): the account's upload bandwidth. */
  throttle?: Transform | null;
  /** Sees the bytes as stored (after conversion): the quota counter of the stream path. */
  counter?: Transform | null;
  /** The same quota for a direct copy (kernel or TLS); none: the upload may grow without limit. */
  allowance?: UploadAllowance | null;
  /** Whether the kernel may splice the bytes into the file when nothing needs to see them (default: yes). */
  zeroCopy?: boolean;
  /** Called when the client's data has ended, before storage learns of it: the last moment to abort the upload. */
  onEnd?: () => void;
}

/**
 * Splices the upload into `file` within the allowance (if any): step by step, each limited to the
 * room just reserved; an upload that still has bytes when the room is gone is refused (nothing
 * beyond the room is written). Resolves with the bytes written, or null when the kernel copy could
 * not start (see `kernelCopyUnavailable`): then nothing was read, and the stream is the way.
 */
async function spliceWithinQuota(
  socket: Socket,
  file: LocalFile,
  signal: AbortSignal,
  allowance: UploadAllowance | null,
): Promise<number | null> {
  let total = 0;
  for (;;) {
    const room = allowance ? allowance.allow(QUOTA_STEP) : -1;
    let step: Copied;
    try {
      step = await receiveSocketToFile(socket, { fd: file.fd, position: file.position + total }, signal, room);
    } catch (err) {
      // Could not start at all (no descriptor to spare…): nothing was read, the stream can take over.
      if (total === 0 && kernelCopyUnavailable(err)) return null;
      throw err;
    }
    total += step.bytes;
    if (!step.full) return total;
    if (allowance && room === 0) throw allowance.refuse();
  }
}

/**
 * The client's upload as a stream ending at the client's EOF (STREAM mode ends a file by closing
 * the connection, RFC 959 §3.4.1), offering storage a direct copy into a local file where nothing
 * needs to see the bytes (see {@link directCopy}). An abort destroys the socket (Session.abortTransfer),
 * so the storage write rejects. A failing stage (the quota counter refusing a chunk) destroys the socket and the
 * storage's source alike, and storage destroying its source (a write error) tears the socket down too.
 */
export function receiveFromClient(socket: Socket, ascii: boolean, signal: AbortSignal, stages: UploadStages = {}): UploadReadable {
  const chain: Transform[] = [];
  if (stages.throttle) chain.push(stages.throttle);
  if (ascii) chain.push(new AsciiDecoder());
  if (stages.counter) chain.push(stages.counter);
  // Registered before storage reads the socket, so it runs before storage sees the end.
  if (stages.onEnd) socket.once("end", stages.onEnd);
  // The callback form returns the last stage for storage to consume; errors are delivered to
  // storage through that stage (pipeline destroys every stage with the error).
  const stream = () => (chain.length === 0 ? socket : (pipelineCallback([socket, ...chain], () => {}) as unknown as Readable));
  const copyInto = directCopy(socket, ascii, signal, stages);
  if (!copyInto) return stream();
  if (chain.length === 0) return Object.assign(socket, { copyInto }) satisfies UploadReadable;
  // A storage that streams after all (an append: O_APPEND gives a copy no position) must still
  // get the quota counter, and a copy must find the socket unread: the stream is built on demand.
  return Object.assign(new OpenOnRead(stream, socket), { copyInto }) satisfies UploadReadable;
}

/**
 * How an upload's bytes reach a local file without a stream, when nothing but the quota needs to
 * see them: spliced by the kernel from a plain socket, or decrypted from a TLS one into reused
 * buffers (tls-receive.ts). Null when a stage must see every byte (TYPE A, a throttle).
 */
function directCopy(socket: Socket, ascii: boolean, signal: AbortSignal, stages: UploadStages): UploadReadable["copyInto"] | null {
  if (ascii || stages.throttle || (stages.counter && !stages.allowance)) return null;
  const allowance = stages.allowance ?? null;
  const ended = <T>(bytes: T): T => {
    if (bytes !== null) stages.onEnd?.();
    return bytes;
  };
  if (stages.zeroCopy !== false && kernelSocketFd(socket) !== null) {
    return async (file) => ended(await spliceWithinQuota(socket, file, signal, allowance));
  }
  if (tlsReceiveAvailable && socket instanceof TLSSocket) return async (file) => ended(await receiveTlsToFile(socket, file, allowance));
  return null;
}

/** A stream built only when first read, relaying what the built one yields; destroying it destroys the socket. */
class OpenOnRead extends Readable {
  private source: Readable | null = null;

  constructor(
    private readonly open: () => Readable,
    private readonly socket: Socket,
  ) {
    super();
  }

  override _read(): void {
    if (this.source) {
      this.source.resume();
      return;
    }
    const source = (this.source = this.open());
    source.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) source.pause();
    });
    source.once("end", () => this.push(null));
    source.once("error", (err) => this.destroy(err));
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    (this.source ?? this.socket).destroy(err ?? undefined);
    callback(err);
  }
}

/** Makes a stalled data connection fail instead of hanging the session. */
export function armStallTimeout(socket: Socket, timeoutMs: number): void {
  socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error("data connection stalled"), { code: "ETIMEDOUT" })));
}

/** A listing's bytes go to the socket in chunks of about this size: few writes, bounded memory. */
const LINES_CHUNK_SIZE = 64 * 1024;

/**
 * Sends batches of entries, each formatted as a CRLF-terminated line, in large chunks pulled at the
 * socket's pace, then ends the socket. Without a throttle the chunks are written straight to the
 * socket: a stream pipeline costs a small listing more than its lines do.
 */
export async function sendLines<T>(
  batches: AsyncIterable<readonly T[]>,
  format: (entry: T) => string,
  socket: Socket,
  signal: AbortSignal,
  throttle: Transform | null,
): Promise<void> {
  if (throttle) {
    await pipeline([Readable.from(lineChunks(batches, format), { objectMode: false }), throttle, socket], { signal });
    return;
  }
  for await (const chunk of lineChunks(batches, format)) {
    signal.throwIfAborted();
    await writeChunk(socket, chunk);
  }
  signal.throwIfAborted();
  await endSending(socket);
}

async function* lineChunks<T>(batches: AsyncIterable<readonly T[]>, format: (entry: T) => string): AsyncGenerator<Buffer> {
  let text = "";
  for await (const batch of batches) {
    for (const entry of batch) text += format(entry) + "\r\n";
    if (text.length >= LINES_CHUNK_SIZE) {
      yield Buffer.from(text, "utf8");
      text = "";
    }
  }
  if (text) yield Buffer.from(text, "utf8");
}
