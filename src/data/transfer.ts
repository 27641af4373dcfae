/**
 * The transfer pump: moves bytes between storage streams and the data socket with backpressure
 * (stream.pipeline), converting line endings for TYPE A, metering them through the account's
 * bandwidth throttle (wire bytes) and quota counter (stored bytes), and stops on abort or stall.
 * A stage that is not needed (binary type, unlimited account) is not inserted at all.
 */
import type { Socket } from "node:net";
import { pipeline as pipelineCallback, Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AsciiDecoder, AsciiEncoder } from "./ascii.js";

/**
 * Sends `source` to the client and resolves once every byte is handed to the kernel and FIN sent.
 * `throttle` meters the bytes as they go on the wire (after TYPE A conversion).
 */
export async function sendToClient(
  source: Readable,
  socket: Socket,
  ascii: boolean,
  signal: AbortSignal,
  throttle: Transform | null = null,
): Promise<void> {
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
}

/**
 * The client's upload as a stream ending at the client's EOF (STREAM mode ends a file by closing
 * the connection, RFC 959 §3.4.1). An abort destroys it, so the storage write rejects. A failing
 * stage (the quota counter refusing a chunk) destroys the socket and the storage's source alike,
 * and storage destroying its source (a write error) tears the socket down too.
 */
export function receiveFromClient(socket: Socket, ascii: boolean, signal: AbortSignal, stages: UploadStages = {}): Readable {
  const onAbort = () => socket.destroy(new Error("transfer aborted"));
  signal.addEventListener("abort", onAbort, { once: true });
  socket.once("close", () => signal.removeEventListener("abort", onAbort));
  const chain: Transform[] = [];
  if (stages.throttle) chain.push(stages.throttle);
  if (ascii) chain.push(new AsciiDecoder());
  if (stages.counter) chain.push(stages.counter);
  if (chain.length === 0) return socket;
  // The callback form returns the last stage for storage to consume; errors are delivered to
  // storage through that stage (pipeline destroys every stage with the error).
  return pipelineCallback([socket, ...chain], () => {}) as unknown as Readable;
}

/** Makes a stalled data connection fail instead of hanging the session. */
export function armStallTimeout(socket: Socket, timeoutMs: number): void {
  socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error("data connection stalled"), { code: "ETIMEDOUT" })));
}

/** A listing's bytes go to the socket in chunks of about this size: few writes, bounded memory. */
const LINES_CHUNK_SIZE = 64 * 1024;

/** Streams batches of text lines as CRLF-terminated lines in large chunks, pulled at the socket's pace. */
export function linesToStream(batches: AsyncIterable<readonly string[]>): Readable {
  async function* chunks() {
    let text = "";
    for await (const lines of batches) {
      for (const line of lines) text += line + "\r\n";
      if (text.length >= LINES_CHUNK_SIZE) {
        yield Buffer.from(text, "utf8");
        text = "";
      }
    }
    if (text) yield Buffer.from(text, "utf8");
  }
  return Readable.from(chunks(), { objectMode: false });
}
