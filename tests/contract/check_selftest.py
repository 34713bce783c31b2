#!/usr/bin/python3
"""check_selftest.py — contract_check.py finds what it must: a small spec, its
routes and answers that pass, then one planted fault at a time, each of which
must be reported (a checker that passes everything would pass the contract
test too). Prints "N passed, N failed"; exit 1 on a failure."""
import contextlib
import copy
import io
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contract_check  # noqa: E402
import yaml  # noqa: E402

ERR = {"$ref": "#/components/schemas/Error"}
SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "security": [{"bearer": []}],
    "paths": {
        "/things/{id}": {
            "get": {
                "responses": {
                    "200": {"description": "a thing", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Thing"},
                        "example": {"id": "t1", "size": 2, "note": None}}}},
                    "404": {"description": "no", "content": {"application/json": {"schema": ERR}}},
                }
            },
            "delete": {
                "responses": {
                    "204": {"description": "gone"},
                    "404": {"description": "no", "content": {"application/json": {
                        "schema": ERR, "example": {"error": {"code": "not_found", "message": "no"}}}}},
                }
            },
        },
        "/health": {
            "get": {
                "security": [],
                "responses": {"200": {"description": "ok", "content": {"text/plain": {
                    "schema": {"type": "string"}, "example": "ok"}}}},
            }
        },
    },
    "components": {
        "schemas": {
            "Thing": {"type": "object", "additionalProperties": False,
                      "required": ["id", "size", "note"],
                      "properties": {"id": {"type": "string"}, "size": {"type": "integer"},
                                     "note": {"type": ["string", "null"]}}},
            "Error": {"type": "object", "additionalProperties": False, "required": ["error"],
                      "properties": {"error": {"type": "object", "additionalProperties": False,
                                               "required": ["code", "message"],
                                               "properties": {"code": {"type": "string"},
                                                              "message": {"type": "string"}}}}},
        }
    },
}
ROUTES = ["GET /things/{id}", "DELETE /things/{id}", "GET /health"]
CALLERS = ["none", "admin"]
ERR_BODY = json.dumps({"error": {"code": "not_found", "message": "no"}})


def ex(op, who, status, body="", ct="application/json"):
    return {"op": op, "as": who, "path": "/x", "status": status, "content_type": ct, "body": body}


GOOD_THING = json.dumps({"id": "t1", "size": 2, "note": None})
EXCHANGES = [
    ex("GET /things/{id}", "none", 404, ERR_BODY),
    ex("GET /things/{id}", "admin", 200, GOOD_THING),
    ex("DELETE /things/{id}", "none", 404, ERR_BODY),
    ex("DELETE /things/{id}", "admin", 204, "", ""),
    ex("GET /health", "none", 200, "ok", "text/plain; charset=utf-8"),
]


def run(spec, routes, exchanges):
    """contract_check's output lines for these inputs."""
    with tempfile.TemporaryDirectory() as d:
        paths = [os.path.join(d, n) for n in ("spec.yaml", "routes.txt", "ex.jsonl")]
        with open(paths[0], "w") as f:
            yaml.safe_dump(spec, f)
        with open(paths[1], "w") as f:
            f.write("".join(r + "\n" for r in routes))
        with open(paths[2], "w") as f:
            f.write("".join(json.dumps(e) + "\n" for e in exchanges))
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            rc = contract_check.main([paths[0], "--routes", paths[1], "--exchanges", paths[2],
                                      "--callers", ",".join(CALLERS)])
        lines = out.getvalue().splitlines()
        return rc, lines


def plant(name, want, spec=None, routes=None, exchanges=None):
    return (name, want, spec or SPEC, routes or ROUTES, exchanges or EXCHANGES)


def with_answer(i, **kw):
    e = copy.deepcopy(EXCHANGES)
    e[i].update(kw)
    return e


def spec_with(edit):
    s = copy.deepcopy(SPEC)
    edit(s)
    return s


CASES = [
    plant("a field the schema does not allow", "Additional properties are not allowed",
          exchanges=with_answer(1, body=json.dumps({"id": "t1", "size": 2, "note": None,
                                                     "extra": 1}))),
    plant("a required field missing", "'note' is a required property",
          exchanges=with_answer(1, body=json.dumps({"id": "t1", "size": 2}))),
    plant("a wrong type", "is not of type 'integer'",
          exchanges=with_answer(1, body=json.dumps({"id": "t1", "size": "2", "note": None}))),
    plant("an error body not in the Error shape", "Additional properties are not allowed",
          exchanges=with_answer(0, body=json.dumps({"error": {"code": "x", "message": "y"},
                                                     "hint": "z"}))),
    plant("an undocumented status", "status 500 is not documented",
          exchanges=with_answer(1, status=500)),
    plant("a Content-Type the spec does not list", "Content-Type text/html is not one",
          exchanges=with_answer(1, content_type="text/html")),
    plant("a body where the spec has none", "the spec documents no body",
          exchanges=with_answer(3, body="{}", content_type="application/json")),
    plant("an operation without a case", "coverage: DELETE /things/{id}: no test case",
          exchanges=[e for e in EXCHANGES if e["op"] != "DELETE /things/{id}"]),
    plant("an operation without a success", "no case that succeeds",
          exchanges=[e for e in EXCHANGES if e["status"] != 204]),
    plant("an operation without a failure", "no case with bad input",
          exchanges=with_answer(2, status=204, body="", content_type="")),
    plant("an operation not called as every caller", "never called as admin",
          exchanges=[e for e in EXCHANGES if not (e["op"] == "GET /things/{id}" and
                                                  e["as"] == "admin")] +
          [ex("GET /things/{id}", "none", 200, GOOD_THING)]),
    plant("a route the spec lacks", "routes: POST /things: served by the router",
          routes=ROUTES + ["POST /things"]),
    plant("a spec operation no route serves", "routes: GET /health: in the spec but no route",
          routes=ROUTES[:2]),
    plant("an open response schema", "without additionalProperties",
          spec=spec_with(lambda s: s["components"]["schemas"]["Thing"].pop(
              "additionalProperties"))),
    plant("a response schema without required", "no required list",
          spec=spec_with(lambda s: s["components"]["schemas"]["Thing"].pop("required"))),
    plant("an error answer with its own schema", "an error answer's schema must be",
          spec=spec_with(lambda s: s["paths"]["/things/{id}"]["get"]["responses"]["404"]
                         ["content"]["application/json"].update(
                             schema={"type": "object", "additionalProperties": True}))),
    plant("an operation without an example", "GET /health: no example",
          spec=spec_with(lambda s: s["paths"]["/health"]["get"]["responses"]["200"]
                         ["content"]["text/plain"].pop("example"))),
    plant("an example that does not fit", "example does not fit its schema",
          spec=spec_with(lambda s: s["paths"]["/things/{id}"]["get"]["responses"]["200"]
                         ["content"]["application/json"].update(example={"id": "t1"}))),
]


def main():
    passed = failed = 0
    rc, lines = run(SPEC, ROUTES, EXCHANGES)
    if rc == 0 and not lines:
        passed += 1
    else:
        failed += 1
        print(f"FAIL the clean inputs: exit {rc}: {lines}")
    for name, want, spec, routes, exchanges in CASES:
        rc, lines = run(spec, routes, exchanges)
        if rc == 1 and any(want in line for line in lines):
            passed += 1
        else:
            failed += 1
            print(f"FAIL {name}: want a problem with {want!r}, got exit {rc}: {lines}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
