/** The certificate watcher: a broken certificate is tried, and logged, once, not for every event in its directory. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test, type TestContext } from "node:test";
import { generate } from "selfsigned";
import { configSchema } from "../../src/config/schema.js";
import { createLogger } from "../../src/observe/logger.js";
import { TlsContextProvider } from "../../src/tls/tls-context.js";
import { waitFor } from "../helpers/wait.js";

/** A provider serving a fresh certificate from files in a temporary directory, with its log lines; closed when the test ends. */
async function providerInDirectory(t: TestContext, commonName: string) {
  const dir = mkdtempSync(join(tmpdir(), "edgeftp-tls-"));
  const lines: Array<{ msg: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as { msg: string });
      done();
    },
  });
  const good = await generate([{ name: "commonName", value: commonName }], { keyType: "ec" });
  writeFileSync(join(dir, "cert.pem"), good.cert);
  writeFileSync(join(dir, "key.pem"), good.private);
  const config = configSchema.parse({ tls: { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") } });
  const provider = await TlsContextProvider.create(config, createLogger("info", sink));
  t.after(() => {
    provider.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, lines, provider };
}

test("a broken certificate is logged once, however many events its directory sees after", async (t) => {
  const { dir, lines, provider } = await providerInDirectory(t, "watch");
  provider.watch();
  const failures = () => lines.filter((l) => l.msg.startsWith("TLS certificate reload failed")).length;

  writeFileSync(join(dir, "cert.pem"), "garbage");
  await waitFor(() => failures() === 1, "the broken certificate's error");
  // Other files in the directory change (a log file kept there, say): no new attempt, no new line.
  for (let i = 0; i < 4; i++) {
    writeFileSync(join(dir, "other.log"), `line ${i}\n`);
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(failures(), 1);

  // A good certificate (a new one) is loaded as soon as it is there.
  const renewed = await generate([{ name: "commonName", value: "watch" }], { keyType: "ec" });
  writeFileSync(join(dir, "key.pem"), renewed.private);
  writeFileSync(join(dir, "cert.pem"), renewed.cert);
  await waitFor(() => lines.some((l) => l.msg === "TLS certificate reloaded"), "the reload");
});

test("an expired certificate put in place of a valid one is refused, and the valid one kept", async (t) => {
  const { dir, lines, provider } = await providerInDirectory(t, "good");
  const before = provider.context;
  const expired = await generate([{ name: "commonName", value: "expired" }], {
    keyType: "ec",
    notBeforeDate: new Date("2020-01-01T00:00:00Z"),
    notAfterDate: new Date("2020-02-01T00:00:00Z"),
  } as Parameters<typeof generate>[1]);
  writeFileSync(join(dir, "key.pem"), expired.private);
  writeFileSync(join(dir, "cert.pem"), expired.cert);
  assert.equal(provider.reload(), false);
  assert.equal(provider.context, before);
  assert.ok(lines.some((l) => l.msg.startsWith("TLS certificate reload failed")), JSON.stringify(lines));
});
