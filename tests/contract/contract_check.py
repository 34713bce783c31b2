#!/usr/bin/python3
"""contract_check.py — checks recorded API answers against docs/openapi.yaml.

    contract_check.py SPEC --routes FILE --exchanges FILE --callers A,B,...
    contract_check.py SPEC --lint-only

Validation is Draft 2020-12 JSON Schema (what OpenAPI 3.1 schemas are), done by
the standard `jsonschema` package (Debian python3-jsonschema), with `$ref`s
resolved in the spec document. Problems are printed one a line; exit 1 when
there are any, 2 when this script cannot run (a missing package, a bad file).

The checks:
  lint      every response schema (components included, through $ref) that is
            an object says `additionalProperties` (false for our shapes; true or
            a schema where the object is free-form on purpose) and, with
            `properties`, lists `required`; every JSON error answer (4xx, 5xx)
            is the one `#/components/schemas/Error`; every operation has an
            example, and every example validates against its schema.
  answers   each recorded answer's status is documented for its operation, its
            Content-Type is one the spec lists for that status (no body where
            the spec lists none), and a JSON body validates against the schema.
  coverage  every operation has a recorded success (< 400) and a recorded
            failure (>= 400); an operation that needs authentication was called
            by every caller of --callers.
  routes    the router's routes (--routes: "METHOD /pattern" lines) are exactly
            the spec's operations.
"""
import argparse
import json
import sys
from datetime import datetime

try:
    import yaml
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"contract_check: {e}: install the Debian packages python3-yaml and "
          "python3-jsonschema (scripts/lib.sh does)", file=sys.stderr)
    sys.exit(2)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ERROR_REF = "#/components/schemas/Error"


def operations(spec):
    """(key "METHOD /path", operation object) for every operation."""
    for path, item in (spec.get("paths") or {}).items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def deref(spec, node):
    """Follow a local $ref chain ("#/a/b") to the node it names."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        ref = node["$ref"]
        if ref in seen or not ref.startswith("#/"):
            return node
        seen.add(ref)
        target = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def responses_of(spec, op):
    """{status: response object} with response $refs followed."""
    return {str(k): deref(spec, v) for k, v in (op.get("responses") or {}).items()}


def media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


def is_json(mt):
    return mt == "application/json" or mt.endswith("+json")


class Checker:
    def __init__(self, spec):
        self.spec = spec
        self.problems = []
        fc = FormatChecker()

        @fc.checks("date-time", raises=ValueError)
        def _date_time(value):  # RFC 3339: a date, "T", a time with an offset
            if not isinstance(value, str):
                return True
            if "T" not in value.upper() or not (value.endswith(("Z", "z")) or
                                                value[-6] in "+-"):
                raise ValueError("not an RFC 3339 date-time")
            datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            return True

        self.format_checker = fc
        self.resolver = jsonschema.RefResolver.from_schema(spec)

    def problem(self, text):
        self.problems.append(text)

    def validate(self, schema, instance):
        """Messages of every way instance breaks schema ([] when it fits)."""
        v = Draft202012Validator(schema, resolver=self.resolver,
                                 format_checker=self.format_checker)
        out = []
        for err in sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path)):
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                            for p in err.absolute_path) or "(top)"
            out.append(f"{where}: {err.message[:300]}")
        return out

    # ---- lint ----------------------------------------------------------------

    def lint_schema(self, where, schema, seen):
        if isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen:
                return
            seen.add(ref)
            self.lint_schema(ref, deref(self.spec, {"$ref": ref}), seen)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            if rest:
                self.lint_schema(where, rest, seen)
            return
        if not isinstance(schema, dict):
            return
        types = schema.get("type")
        types = types if isinstance(types, list) else [types]
        if "object" in types or "properties" in schema:
            if "additionalProperties" not in schema:
                self.problem(f"lint: {where}: an object schema without additionalProperties "
                             "(false for our shapes, true where free-form on purpose)")
            if "properties" in schema and "required" not in schema:
                self.problem(f"lint: {where}: an object schema with properties but no "
                             "required list")
            for name, sub in (schema.get("properties") or {}).items():
                self.lint_schema(f"{where}.{name}", sub, seen)
            ap = schema.get("additionalProperties")
            if isinstance(ap, dict):
                self.lint_schema(f"{where}.*", ap, seen)
        if "items" in schema:
            self.lint_schema(f"{where}[]", schema["items"], seen)
        for key in ("oneOf", "anyOf", "allOf"):
            for i, sub in enumerate(schema.get(key) or []):
                self.lint_schema(f"{where}.{key}[{i}]", sub, seen)

    def check_examples(self, where, media):
        """Validate the examples of one media type object; their number."""
        examples = []
        if "example" in media:
            examples.append(("example", media["example"]))
        for name, ex in (media.get("examples") or {}).items():
            ex = deref(self.spec, ex)
            if "value" in ex:
                examples.append((f"examples.{name}", ex["value"]))
        schema = media.get("schema")
        for name, value in examples:
            if schema is not None:
                for msg in self.validate(schema, value):
                    self.problem(f"lint: {where} {name} does not fit its schema: {msg}")
        return len(examples)

    def lint(self):
        if not str(self.spec.get("openapi", "")).startswith("3.1."):
            self.problem("lint: not an OpenAPI 3.1 document (openapi: 3.1.x)")
        for key, op in operations(self.spec):
            n_examples = 0
            body = deref(self.spec, op.get("requestBody") or {})
            for mt, media in (body.get("content") or {}).items():
                n_examples += self.check_examples(f"{key} request {mt}", media)
            for status, resp in responses_of(self.spec, op).items():
                for mt, media in (resp.get("content") or {}).items():
                    where = f"{key} {status} {mt}"
                    n_examples += self.check_examples(where, media)
                    if not is_json(mt) or "schema" not in media:
                        continue
                    schema = media["schema"]
                    if status[0] in "45" and schema != {"$ref": ERROR_REF}:
                        self.problem(f"lint: {where}: an error answer's schema must be "
                                     f"{ERROR_REF}")
                    self.lint_schema(where, schema, set())
            if n_examples == 0:
                self.problem(f"lint: {key}: no example (give a request body or an answer "
                             "an `example`)")

    # ---- answers --------------------------------------------------------------

    def check_answer(self, ops, ex):
        key, status = ex["op"], str(ex["status"])
        who = f"{key} as {ex.get('as', '?')} ({ex.get('path', '')}) -> {status}"
        op = ops.get(key)
        if op is None:
            self.problem(f"answer: {who}: no such operation in the spec")
            return
        resps = responses_of(self.spec, op)
        resp = resps.get(status) or resps.get(f"{status[0]}XX") or resps.get("default")
        if resp is None:
            self.problem(f"answer: {who}: status {status} is not documented for "
                         f"{key} (documented: {', '.join(sorted(resps))})")
            return
        content = resp.get("content") or {}
        mt = media_type(ex.get("content_type"))
        body = ex.get("body") or ""
        if not content:
            if body.strip():
                self.problem(f"answer: {who}: the spec documents no body, got "
                             f"{mt or 'no Content-Type'}: {body[:200]!r}")
            return
        media = content.get(mt)
        if media is None:
            self.problem(f"answer: {who}: Content-Type {mt or '(none)'} is not one the spec "
                         f"lists ({', '.join(content)}): {body[:200]!r}")
            return
        if not is_json(mt) or "schema" not in media:
            return
        try:
            value = json.loads(body)
        except ValueError as e:
            self.problem(f"answer: {who}: not JSON ({e}): {body[:200]!r}")
            return
        for msg in self.validate(media["schema"], value):
            self.problem(f"answer: {who}: {msg}")

    def check_coverage(self, ops, exchanges, callers):
        seen = {}
        for ex in exchanges:
            seen.setdefault(ex["op"], []).append(ex)
        global_security = self.spec.get("security")
        for key, op in ops.items():
            got = seen.get(key, [])
            if not got:
                self.problem(f"coverage: {key}: no test case (add its cases: "
                             "tests/contract/test_contract.c)")
                continue
            if not any(int(e["status"]) < 400 for e in got):
                self.problem(f"coverage: {key}: no case that succeeds (status < 400)")
            documents_4xx = any(s.startswith("4") for s in responses_of(self.spec, op))
            if documents_4xx and not any(int(e["status"]) >= 400 for e in got):
                self.problem(f"coverage: {key}: no case with bad input or a refused caller "
                             "(status >= 400)")
            security = op.get("security", global_security)
            if security and callers:
                missing = [c for c in callers if c not in {e.get("as") for e in got}]
                if missing:
                    self.problem(f"coverage: {key}: never called as {', '.join(missing)}")

    def check_routes(self, ops, routes):
        spec_ops = set(ops)
        for r in sorted(routes - spec_ops):
            self.problem(f"routes: {r}: served by the router (core/api/routes.c) but not in "
                         "the spec")
        for r in sorted(spec_ops - routes):
            self.problem(f"routes: {r}: in the spec but no route serves it")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec")
    ap.add_argument("--routes", help="the router's routes, one 'METHOD /pattern' a line")
    ap.add_argument("--exchanges", help="recorded answers, one JSON object a line")
    ap.add_argument("--callers", default="", help="comma-separated callers every "
                    "authenticated operation must be called as")
    ap.add_argument("--lint-only", action="store_true")
    args = ap.parse_args(argv)
    try:
        with open(args.spec, encoding="utf-8") as f:
            spec = yaml.safe_load(f)
        exchanges, routes = [], None
        if args.exchanges:
            with open(args.exchanges, encoding="utf-8") as f:
                exchanges = [json.loads(line) for line in f if line.strip()]
        if args.routes:
            with open(args.routes, encoding="utf-8") as f:
                routes = {line.strip() for line in f if line.strip()}
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"contract_check: {e}", file=sys.stderr)
        return 2
    c = Checker(spec)
    c.lint()
    if not args.lint_only:
        ops = dict(operations(spec))
        for ex in exchanges:
            c.check_answer(ops, ex)
        c.check_coverage(ops, exchanges, [x for x in args.callers.split(",") if x])
        if routes is not None:
            c.check_routes(ops, routes)
    c.problems = list(dict.fromkeys(c.problems))  # a component is linted once per use
    for p in c.problems:
        print(p)
    n_ops = sum(1 for _ in operations(spec))
    print(f"contract_check: {n_ops} operations, {len(exchanges)} answers, "
          f"{len(c.problems)} problems", file=sys.stderr)
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
