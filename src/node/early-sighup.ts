/**
 * A SIGHUP's default action ends the process. A configuration tool that reloads as a node starts
 * must not kill it: from the moment the CLI loads this module (second, after the thread pool's),
 * a SIGHUP is ignored until `serve` installs its reload in its place.
 */
const ignore = (): void => {};
process.on("SIGHUP", ignore);

/** Hands SIGHUP over to the node's own handler. */
export function releaseEarlySighup(): void {
  process.off("SIGHUP", ignore);
}
