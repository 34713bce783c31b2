// validate.mjs SPEC — parse and validate an OpenAPI document with a standard
// parser (@apidevtools/swagger-parser: the OpenAPI 3.1 schema, $refs resolved).
import SwaggerParser from "@apidevtools/swagger-parser";

try {
  const api = await SwaggerParser.validate(process.argv[2]);
  console.log(`${process.argv[2]}: valid OpenAPI ${api.openapi} (${api.info.title} ${api.info.version})`);
} catch (e) {
  console.error(`${process.argv[2]}: not a valid OpenAPI document:\n${e.message}`);
  for (const d of e.details ?? []) console.error(JSON.stringify(d).slice(0, 500));
  process.exit(1);
}
