/**
 * The transfer pump: moves bytes between storage streams and the data socket with backpressure
 * (stream.pipeline), converting line endings for TYPE A, and stops on abort or stall.
 */
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AsciiDecoder, AsciiEncoder } from "./ascii.js";

/** Sends `source` to the client and resolves once every byte is handed to the kernel and FIN sent. */
export async function sendToClient(source: Readable, socket: Socket, ascii: boolean, signal: AbortSignal): Promise<void> {
  if (ascii) await pipeline(source, new AsciiEncoder(), socket, { signal });
  else await pipeline(source, socket, { signal });
}

/**
 * The client's upload as a stream ending at the client's EOF (STREAM mode ends a file by closing
 * the connection, RFC 959 §3.4.1). An abort destroys it, so the storage write rejects.
 */
export function receiveFromClient(socket: Socket, ascii: boolean, signal: AbortSignal): Readable {
  const onAbort = () => socket.destroy(new Error("transfer aborted"));
  signal.addEventListener("abort", onAbort, { once: true });
  socket.once("close", () => signal.removeEventListener("abort", onAbort));
  if (!ascii) return socket;
  const decoder = new AsciiDecoder();
  socket.on("error", (err) => decoder.destroy(err));
  return socket.pipe(decoder);
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
