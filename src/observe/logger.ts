/** The process logger (pino). Sessions derive a child per connection; passwords are never logged. */
import { pino, type Logger } from "pino";

export type { Logger };

/** JSON lines to stdout at `level`; `destination` lets tests silence or capture output. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: undefined, redact: ["password", "*.password"] }, destination ?? process.stdout);
}
