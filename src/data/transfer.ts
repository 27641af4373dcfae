/**
 * The transfer pump: moves bytes between storage streams and the data socket with backpressure
 * (stream.pipeline), converting line endings for TYPE A, metering them through the account's
 * bandwidth throttle (wire bytes) and quota counter (stored bytes), and stops on abort or stall.
 * A stage that is not needed (binary type, unlimited account) is not inserted at all.
 */
import type { Socket } from "node:net";
import { pipeline as pipelineCallback, Readable, type Transform } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import type { FileReadable, KernelFile, UploadReadable } from "../storage/types.js";
import { AsciiDecoder, AsciiEncoder } from "./ascii.js";
import { KernelCopyError, kernelSocketFd, receiveSocketToFile, sendFileToSocket } from "./kernel-copy.js";

/**
 * Errors of a kernel copy that mean "this file system cannot do it", met before any byte moved:
 * the same transfer then goes through the stream instead.
 */
const KERNEL_COPY_UNSUPPORTED = new Set(["EINVAL", "ENOSYS", "EOPNOTSUPP"]);

/**
 * Sends `source` to the client and resolves once every byte is handed to the kernel and FIN sent.
 * `throttle` meters the bytes as they go on the wire (after TYPE A conversion). A binary,
 * unthrottled download of a local file on a plain socket is sent by the kernel itself (sendfile),
 * unless `zeroCopy` is off.
 */
export async function sendToClient(
  source: FileReadable,
  socket: Socket,
  ascii: boolean,
  signal: AbortSignal,
  throttle: Transform | null = null,
  zeroCopy = true,
): Promise<void> {
  if (zeroCopy && !ascii && !throttle && source.kernelFile && kernelSocketFd(socket) !== null) {
    try {
      await sendFileToSocket(socket, source.kernelFile, signal);
      socket.end();
      await finished(socket, { readable: false });
      return;
    } catch (err) {
      if (!(err instanceof KernelCopyError && err.bytes === 0 && KERNEL_COPY_UNSUPPORTED.has(err.code))) throw err;
    }
  }
  const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream> = [source];
  if (ascii) stages.push(new AsciiEncoder());
  if (throttle) stages.push(throttle);
  stages.push(socket);
  await pipeline(stages, { signal });
}

/** What an upload's bytes pass through between the socket and storage. */
export interface UploadStages {
  /** Meters wire bytes (before TYPE A conversion): the account's upload bandwidth. */
  throttle?: Transform | null;
  /** Sees the bytes as stored (after conversion): the quota counter. */
  counter?: Transform | null;
  /** Whether the kernel may splice the bytes into the file when nothing needs to see them (default: yes). */
  zeroCopy?: boolean;
}

/**
 * The client's upload as a stream ending at the client's EOF (STREAM mode ends a file by closing
 * the connection, RFC 959 §3.4.1). An abort destroys it, so the storage write rejects. A failing
 * stage (the quota counter refusing a chunk) destroys the socket and the storage's source alike,
 * and storage destroying its source (a write error) tears the socket down too.
 */
export function receiveFromClient(socket: Socket, ascii: boolean, signal: AbortSignal, stages: UploadStages = {}): UploadReadable {
  const onAbort = () => socket.destroy(new Error("transfer aborted"));
  signal.addEventListener("abort", onAbort, { once: true });
  socket.once("close", () => signal.removeEventListener("abort", onAbort));
  const chain: Transform[] = [];
  if (stages.throttle) chain.push(stages.throttle);
  if (ascii) chain.push(new AsciiDecoder());
  if (stages.counter) chain.push(stages.counter);
  if (chain.length === 0) {
    // Nothing to see on the way: a storage with local files may let the kernel splice the bytes in.
    if (stages.zeroCopy === false || kernelSocketFd(socket) === null) return socket;
    const copyInto = (file: KernelFile) => receiveSocketToFile(socket, file, signal);
    return Object.assign(socket, { copyInto }) satisfies UploadReadable;
  }
  // The callback form returns the last stage for storage to consume; errors are delivered to
  // storage through that stage (pipeline destroys every stage with the error).
  return pipelineCallback([socket, ...chain], () => {}) as unknown as Readable;
}

/** Makes a stalled data connection fail instead of hanging the session. */
export function armStallTimeout(socket: Socket, timeoutMs: number): void {
  socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error("data connection stalled"), { code: "ETIMEDOUT" })));
}

/** Streams text lines (already CRLF-terminated) in large chunks, pulled at the socket's pace. */
export function linesToStream(lines: AsyncIterable<string>): Readable {
  async function* batched() {
    let batch = "";
    for await (const line of lines) {
      batch += line;
      if (batch.length >= 64 * 1024) {
        yield Buffer.from(batch, "utf8");
        batch = "";
      }
    }
    if (batch) yield Buffer.from(batch, "utf8");
  }
  return Readable.from(batched(), { objectMode: false });
}
