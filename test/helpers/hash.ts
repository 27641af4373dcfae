import { createHash } from "node:crypto";

/** Hex SHA-256, to compare transferred content with what was sent. */
export const sha256 = (data: Buffer | string): string => createHash("sha256").update(data).digest("hex");
