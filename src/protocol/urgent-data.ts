/**
 * The Telnet Synch that clients send before ABOR (RFC 959 §4.1.3, RFC 854) is TCP urgent data, and
 * Linux takes the urgent byte out of the stream unless SO_OOBINLINE is set: Python's ftplib sends
 * "ABOR\r\n" itself urgently (its LF would go missing, and the line never end); BSD clients send
 * IAC IP IAC urgently, then DM ABOR (the IAC before the DM would go missing). With the option set,
 * the bytes stay where they were sent, and the line reader drops the Telnet commands among them.
 * It needs the native addon (Linux); without it, an urgent ABOR goes unrecognised, an inline one not.
 */
import type { Socket } from "node:net";
import { nativeAddon } from "../native.js";

const addon = nativeAddon<{ keepUrgentInline?(socketFd: number): number }>();

/** Keeps urgent data in a plain TCP socket's stream; false where that could not be done. */
export function keepUrgentInline(socket: Socket): boolean {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof addon?.keepUrgentInline === "function" && typeof fd === "number" && fd >= 0 && addon.keepUrgentInline(fd) === 0;
}
