/** The configuration reference as a Markdown table, generated from the schema (README embeds it). */
import { configOptions } from "./load.js";

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function formatConfigReference(): string {
  const rows = configOptions.map((o) => {
    const def = o.default === "" ? "(empty)" : `\`${String(o.default)}\``;
    const kind = o.kind === "enum" ? o.choices!.join(" \\| ") : o.kind;
    return `| \`${o.path}\` | \`${o.flag}\` | \`${o.env}\` | ${kind} | ${def} | ${cell(o.description)} |`;
  });
  return ["| key (YAML) | flag | environment | type | default | meaning |", "| --- | --- | --- | --- | --- | --- |", ...rows].join("\n") + "\n";
}
