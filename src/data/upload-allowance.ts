/**
 * The account's byte quota as an upload copied without a stream sees it (spliced by the kernel,
 * or decrypted into reused buffers): room reserved in bulk, since such a copy is not metered
 * chunk by chunk as the stream path's counter is.
 */
export interface UploadAllowance {
  /** Reserves room for up to `max` more bytes stored; returns how many (0: no room left; maybe fewer than fit). */
  allow(max: number): number;
  /** The error that stops an upload with more bytes than room (and marks it stopped by the quota). */
  refuse(): Error;
}

/** Room reserved at a time: the most such an upload holds reserved beyond what it wrote. */
export const QUOTA_STEP = 64 * 1024 * 1024;
