#!/usr/bin/env python3
"""Prints the "rules" member of a tenant file: 100 rules of the usual mix, none
of which matches the benchmark's GET /1k.bin (each is evaluated, none acts):
path prefixes and exact paths, globs, header and query conditions, POSIX
regular expressions, methods with client prefixes, and all/any/not."""
import json
rules = []
for i in range(40):
    rules.append({"id": f"prefix-{i}", "match": {"path": {"prefix": f"/admin{i}/"}}, "action": "deny"})
for i in range(20):
    rules.append({"id": f"exact-{i}", "match": {"path": f"/old-page-{i}.html"}, "action": "redirect", "location": f"$scheme://$host/new-{i}$query"})
for i in range(10):
    rules.append({"id": f"glob-{i}", "match": {"path": {"glob": f"/wp-*/x{i}*.php"}}, "action": "deny"})
for i in range(10):
    rules.append({"id": f"header-{i}", "match": {"header": {"name": f"X-Blocked-{i}"}}, "action": "deny"})
for i in range(10):
    rules.append({"id": f"query-{i}", "match": {"query": {"name": f"debug{i}"}}, "action": "deny", "status": 400})
for i in range(5):
    rules.append({"id": f"regex-{i}", "match": {"path": {"regex": f"^/archive{i}/[0-9]{{4}}/[0-9]+$"}}, "action": "deny"})
for i in range(5):
    rules.append({"id": f"combo-{i}", "match": {"method": ["DELETE", "PUT"], "not": {"client": f"10.{i}.0.0/16"}, "any": [{"tls": False}, {"host": f"internal{i}.bench"}]}, "action": "deny"})
assert len(rules) == 100
print('"rules": ' + json.dumps(rules) + ",")
