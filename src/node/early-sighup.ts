/**
 * A SIGHUP's default action ends the process. A configuration tool that reloads as a node starts
 * must not kill it: from the moment the CLI's entry point (cli.cts) loads this module, before the
 * commands' own modules, a SIGHUP is ignored until `serve` installs its reload in its place. Only
 * Node's own start (~0.1 s here, before any module runs) is left to the signal's default action.
 */
const ignore = (): void => {};
process.on("SIGHUP", ignore);

/** Hands SIGHUP over to the node's own handler. */
export function releaseEarlySighup(): void {
  process.off("SIGHUP", ignore);
}
