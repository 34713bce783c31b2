// mutate.mjs SPEC OUT — the spec with one breaking change (Job.retry_count no
// longer required), as JSON: run.sh checks that the client fails to compile
// against it, so the compile step is known to catch what it is there for.
// (js-yaml comes with @apidevtools/swagger-parser, pinned by package-lock.json.)
import { readFileSync, writeFileSync } from "node:fs";
import yaml from "js-yaml";

const spec = yaml.load(readFileSync(process.argv[2], "utf8"));
const required = spec.components?.schemas?.Job?.required ?? [];
if (!required.includes("retry_count")) {
  console.error("mutate.mjs: Job.required has no retry_count any more: pick another breaking change");
  process.exit(1);
}
spec.components.schemas.Job.required = required.filter((f) => f !== "retry_count");
writeFileSync(process.argv[3], JSON.stringify(spec));
