#!/usr/bin/env python3
"""Measure the collected corpus and write eval/corpus/STATS.md.

Usage: python3 eval/stats.py   (also run by `python3 eval/collect.py --stats`)

All lengths are measured on the tool objects exactly as stored in
eval/corpus/<id>.json:
  * name / description length: Unicode code points (Python len) and UTF-8 bytes
  * inputSchema size: bytes of compact UTF-8 JSON
    (json.dumps(schema, separators=(",", ":"), ensure_ascii=False))
Percentiles use the nearest-rank method.
"""
from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parent
CORPUS_DIR = EVAL_DIR / "corpus"
OUT = CORPUS_DIR / "STATS.md"

SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
SAFE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")

# JSON Schema keywords whose value is a map name -> schema
MAP_OF_SCHEMAS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
# keywords whose value is a schema
ONE_SCHEMA = {"additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
              "unevaluatedProperties", "unevaluatedItems", "additionalItems", "items"}
# keywords whose value is an array of schemas
LIST_OF_SCHEMAS = {"allOf", "anyOf", "oneOf", "prefixItems"}


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def pct(values: list[float], p: float):
    if not values:
        return 0
    s = sorted(values)
    k = max(0, math.ceil(p / 100 * len(s)) - 1)
    return s[k]


def median(values):
    return pct(values, 50)


def walk_schema(schema, kw: Counter, types: Counter, depth: int, acc: dict, path: str) -> None:
    """Collect keywords and type values of a schema and everything nested in it."""
    acc["max_depth"] = max(acc["max_depth"], depth)
    if isinstance(schema, bool):
        acc["bool_schemas"][schema] += 1
        return
    if not isinstance(schema, dict):
        kw[f"<non-object schema: {type(schema).__name__}>"] += 1
        return
    acc["nodes"] += 1
    for k, v in schema.items():
        kw[k] += 1
        acc["kw_where"].setdefault(k, path or "/")
        if k == "required" and not isinstance(v, list):
            acc["required_nonarray"].append(f"{path or '/'} = {json.dumps(v)}")
        if k == "$ref" and isinstance(v, str):
            acc["refs"][re.sub(r"^(#/[^/]*).*$", r"\1/...", v) if v.startswith("#/") else v[:40]] += 1
        if k == "type":
            if isinstance(v, list):
                types["[" + ",".join(map(str, v)) + "]"] += 1
                for t in v:
                    types[f"{t} (in a type array)"] += 0
            else:
                types[str(v)] += 1
        if k == "properties" and isinstance(v, dict):
            acc["max_properties"] = max(acc["max_properties"], len(v))
        if k == "enum" and isinstance(v, list):
            acc["max_enum"] = max(acc["max_enum"], len(v))
        if k in MAP_OF_SCHEMAS and isinstance(v, dict):
            for name, sub in v.items():
                acc["prop_names"].append(name)
                walk_schema(sub, kw, types, depth + 1, acc, f"{path}/{k}/{name}")
        elif k in ONE_SCHEMA and isinstance(v, (dict, bool)):
            walk_schema(v, kw, types, depth + 1, acc, f"{path}/{k}")
        elif k in LIST_OF_SCHEMAS | {"items"} and isinstance(v, list):
            for i, sub in enumerate(v):
                walk_schema(sub, kw, types, depth + 1, acc, f"{path}/{k}/{i}")


def load_corpus():
    servers = []
    for p in sorted(CORPUS_DIR.glob("*.json")):
        if p.name == "skipped.json":
            continue
        servers.append(json.loads(p.read_text(encoding="utf-8")))
    skipped = []
    sp = CORPUS_DIR / "skipped.json"
    if sp.exists():
        skipped = json.loads(sp.read_text(encoding="utf-8"))
    return servers, skipped


def fmt_char(c: str) -> str:
    if c.isprintable() and c != " ":
        return f"`{c}` (U+{ord(c):04X})"
    return f"U+{ord(c):04X}"


def main(argv: list[str] | None = None) -> int:
    servers, skipped = load_corpus()
    tools = [(s["id"], t) for s in servers for t in s["tools"]]
    L = []
    w = L.append

    names = [t.get("name", "") if isinstance(t.get("name"), str) else "" for _, t in tools]
    name_len = [len(n) for n in names]
    name_bytes = [len(n.encode()) for n in names]
    descs = [(sid, t) for sid, t in tools]
    desc_len = [len(t["description"]) for _, t in tools if isinstance(t.get("description"), str)]
    desc_bytes = [len(t["description"].encode()) for _, t in tools if isinstance(t.get("description"), str)]
    no_desc = [(sid, t.get("name")) for sid, t in tools if not isinstance(t.get("description"), str)]
    empty_desc = [(sid, t.get("name")) for sid, t in tools if t.get("description") == ""]
    schema_size = [(len(compact(t.get("inputSchema")).encode()), sid, t.get("name")) for sid, t in tools]
    out_size = [(len(compact(t["outputSchema"]).encode()), sid, t.get("name")) for sid, t in tools if "outputSchema" in t]
    tool_size = [(len(compact(t).encode()), sid, t.get("name")) for sid, t in tools]
    server_size = [(sum(len(compact(t).encode()) for t in s["tools"]), s["id"]) for s in servers]

    w("# Corpus statistics")
    w("")
    w("Generated by `python3 eval/stats.py` (also `python3 eval/collect.py --stats`) from "
      "`eval/corpus/*.json`. Do not edit by hand.")
    w("")
    w("Lengths: `chars` = Unicode code points, `bytes` = UTF-8 bytes. Schema sizes are bytes of compact "
      "JSON (`separators=(\",\", \":\")`, UTF-8). Percentiles are nearest-rank.")
    w("")
    w("## Totals")
    w("")
    w(f"- servers collected: **{len(servers)}** (skipped: {len(skipped)}, see `skipped.json`)")
    w(f"- tools: **{len(tools)}**")
    doms = Counter(s["domain"] for s in servers)
    w("- servers per domain: " + ", ".join(f"{d} {n}" for d, n in sorted(doms.items())))
    pv = Counter(s.get("protocol_version") for s in servers)
    wire = [s["id"] for s in servers if s.get("tools_match_wire_bytes") is False]
    w(f"- servers whose stored tools re-serialise (compact JSON) to exactly the bytes on the wire: "
      f"{sum(1 for s in servers if s.get('tools_match_wire_bytes'))} of {len(servers)}"
      + (f"; not: {', '.join(wire)}" if wire else ""))
    w("- protocol versions answered: " + ", ".join(f"`{k}` {v}" for k, v in sorted(pv.items(), key=str)))
    w("")

    # ------------------------------------------------------------ names
    w("## Tool names")
    w("")
    w("| measure | chars | bytes |")
    w("| --- | --- | --- |")
    w(f"| max | {max(name_len, default=0)} | {max(name_bytes, default=0)} |")
    w(f"| p99 | {pct(name_len, 99)} | {pct(name_bytes, 99)} |")
    w(f"| p95 | {pct(name_len, 95)} | {pct(name_bytes, 95)} |")
    w(f"| median | {median(name_len)} | {median(name_bytes)} |")
    w(f"| min | {min(name_len, default=0)} | {min(name_bytes, default=0)} |")
    w("")
    longest = sorted(((len(n), sid, n) for (sid, _), n in zip(tools, names)), reverse=True)[:10]
    w("Longest names:")
    w("")
    for n, sid, name in longest:
        w(f"- {n}: `{name}` ({sid})")
    w("")
    chars = Counter(c for n in names for c in n)
    w("Distinct characters used in tool names (" + str(len(chars)) + "): `"
      + "".join(sorted(chars)) + "`")
    w("")
    bad = {c: k for c, k in chars.items() if c not in SAFE_CHARS}
    if bad:
        w("**Characters outside `[A-Za-z0-9_.-]`:**")
        w("")
        for c, k in sorted(bad.items()):
            ex = [f"`{n}` ({sid})" for (sid, _), n in zip(tools, names) if c in n][:5]
            w(f"- {fmt_char(c)}: {k} occurrence(s), e.g. " + ", ".join(ex))
    else:
        w("All tool names match `^[A-Za-z0-9_.-]+$`: no character outside `[A-Za-z0-9_.-]` was seen.")
    w("")
    cls = Counter()
    for n in names:
        if "." in n:
            cls["contains `.`"] += 1
        if "-" in n:
            cls["contains `-`"] += 1
        if "_" in n:
            cls["contains `_`"] += 1
        if any(c.isupper() for c in n):
            cls["contains upper case"] += 1
        if n[:1].isdigit():
            cls["starts with a digit"] += 1
    w("Name shapes: " + ", ".join(f"{k}: {v}" for k, v in sorted(cls.items())))
    w("")
    nonstr = [(sid, t.get("name")) for sid, t in tools if not isinstance(t.get("name"), str)]
    if nonstr:
        w(f"Tools whose name is missing or not a string: {nonstr}")
        w("")

    # ------------------------------------------------------------ descriptions
    w("## Descriptions")
    w("")
    w("| measure | chars | bytes |")
    w("| --- | --- | --- |")
    w(f"| max | {max(desc_len, default=0)} | {max(desc_bytes, default=0)} |")
    w(f"| p99 | {pct(desc_len, 99)} | {pct(desc_bytes, 99)} |")
    w(f"| p95 | {pct(desc_len, 95)} | {pct(desc_bytes, 95)} |")
    w(f"| median | {median(desc_len)} | {median(desc_bytes)} |")
    w(f"| min | {min(desc_len, default=0)} | {min(desc_bytes, default=0)} |")
    w("")
    top = sorted(((len(t["description"]), sid, t.get("name")) for sid, t in tools
                  if isinstance(t.get("description"), str)), reverse=True)[:10]
    if top:
        w(f"Tool holding the max: `{top[0][2]}` ({top[0][1]}), {top[0][0]} chars.")
        w("")
        w("Longest descriptions:")
        w("")
        for n, sid, name in top:
            w(f"- {n}: `{name}` ({sid})")
        w("")
    w(f"- tools without a `description` field: {len(no_desc)}"
      + (" — " + ", ".join(f"`{n}` ({s})" for s, n in no_desc[:20]) if no_desc else ""))
    w(f"- tools with an empty description: {len(empty_desc)}"
      + (" — " + ", ".join(f"`{n}` ({s})" for s, n in empty_desc[:20]) if empty_desc else ""))
    nonascii = sum(1 for _, t in tools if isinstance(t.get("description"), str)
                   and any(ord(c) > 127 for c in t["description"]))
    ctrl = Counter(c for _, t in tools if isinstance(t.get("description"), str)
                   for c in t["description"] if ord(c) < 32 or 0x7f <= ord(c) < 0xa0)
    w(f"- descriptions containing non-ASCII characters: {nonascii}")
    w("- control characters in descriptions: "
      + (", ".join(f"{fmt_char(c)} x{k}" for c, k in sorted(ctrl.items())) or "none"))
    w("")

    # ------------------------------------------------------------ schemas
    w("## inputSchema")
    w("")
    sizes = [x[0] for x in schema_size]
    w("| measure | bytes (compact JSON) |")
    w("| --- | --- |")
    w(f"| max | {max(sizes, default=0)} |")
    w(f"| p99 | {pct(sizes, 99)} |")
    w(f"| p95 | {pct(sizes, 95)} |")
    w(f"| median | {median(sizes)} |")
    w(f"| min | {min(sizes, default=0)} |")
    w("")
    w("Largest inputSchemas:")
    w("")
    for n, sid, name in sorted(schema_size, reverse=True)[:10]:
        w(f"- {n} bytes: `{name}` ({sid})")
    w("")
    kw, types = Counter(), Counter()
    acc_all = {"max_depth": 0, "nodes": 0, "max_properties": 0, "max_enum": 0, "prop_names": []}
    depth_of = []
    root_types = Counter()
    missing_schema = []
    bool_schemas, refs = Counter(), Counter()
    kw_example, required_nonarray, non_object_root = {}, [], []
    for sid, t in tools:
        sch = t.get("inputSchema")
        if sch is None:
            missing_schema.append((sid, t.get("name")))
            continue
        root_types[str(sch.get("type", "(absent)")) if isinstance(sch, dict) else type(sch).__name__] += 1
        acc = {"max_depth": 0, "nodes": 0, "max_properties": 0, "max_enum": 0, "prop_names": [],
               "bool_schemas": bool_schemas, "kw_where": {}, "required_nonarray": [], "refs": refs}
        walk_schema(sch, kw, types, 1, acc, "")
        for k, where in acc["kw_where"].items():
            kw_example.setdefault(k, f"`{t.get('name')}` ({sid}) at `{where}`")
        for r in acc["required_nonarray"]:
            required_nonarray.append(f"`{t.get('name')}` ({sid}) `{r}`")
        if not (isinstance(sch, dict) and sch.get("type") == "object"):
            non_object_root.append(f"`{t.get('name')}` ({sid}): `{compact(sch)[:80]}`")
        depth_of.append((acc["max_depth"], sid, t.get("name")))
        acc_all["max_depth"] = max(acc_all["max_depth"], acc["max_depth"])
        acc_all["max_properties"] = max(acc_all["max_properties"], acc["max_properties"])
        acc_all["max_enum"] = max(acc_all["max_enum"], acc["max_enum"])
        acc_all["nodes"] = max(acc_all["nodes"], acc["nodes"])
        acc_all["prop_names"] += acc["prop_names"]
    w(f"- tools without inputSchema: {len(missing_schema)}"
      + (" — " + ", ".join(f"`{n}` ({s})" for s, n in missing_schema[:20]) if missing_schema else ""))
    w("- root `type` of inputSchema: " + ", ".join(f"`{k}` {v}" for k, v in sorted(root_types.items())))
    if non_object_root:
        w(f"- inputSchemas whose root is not `\"type\": \"object\"` ({len(non_object_root)}): "
          + "; ".join(non_object_root[:12]) + (" ..." if len(non_object_root) > 12 else ""))
    w(f"- boolean sub-schemas (`true`/`false`, e.g. `additionalProperties: false`): "
      f"false {bool_schemas[False]}, true {bool_schemas[True]}")
    w(f"- `required` whose value is not an array (draft-3 style): {len(required_nonarray)}"
      + (" — " + "; ".join(required_nonarray[:8]) if required_nonarray else ""))
    raw_req = []

    def scan(o, path, name, sid):
        if isinstance(o, dict):
            if "required" in o and isinstance(o["required"], bool):
                raw_req.append(f"`{name}` ({sid}) at `{path}/required`")
            for k, v in o.items():
                scan(v, f"{path}/{k}", name, sid)
        elif isinstance(o, list):
            for i, v in enumerate(o):
                scan(v, f"{path}/{i}", name, sid)
    for sid, t in tools:
        scan(t.get("inputSchema"), "", t.get("name"), sid)
    w(f"- objects anywhere inside inputSchemas (schema or not) with a boolean `required`: {len(raw_req)}"
      + (" — " + "; ".join(raw_req[:6]) if raw_req else ""))
    if refs:
        w("- `$ref` targets: " + ", ".join(f"`{k}` {v}" for k, v in refs.most_common()))
    d = max(depth_of, default=(0, "", ""))
    w(f"- max schema nesting depth (root = 1, one level per sub-schema): {d[0]} (`{d[2]}`, {d[1]}); "
      f"p99 {pct([x[0] for x in depth_of], 99)}, median {median([x[0] for x in depth_of])}")
    w(f"- max sub-schemas in one inputSchema: {acc_all['nodes']}")
    w(f"- max properties in one object schema: {acc_all['max_properties']}")
    w(f"- max `enum` length: {acc_all['max_enum']}")
    pn = acc_all["prop_names"]
    pn_bad = sorted({c for n in pn for c in n if c not in SAFE_CHARS})
    w(f"- property names: max length {max((len(n) for n in pn), default=0)} chars; characters outside "
      f"`[A-Za-z0-9_.-]`: " + (" ".join(fmt_char(c) for c in pn_bad) or "none"))
    w("")
    w("JSON Schema `type` values seen (any depth; a type array is shown as `[a,b]`):")
    w("")
    w(", ".join(f"`{k}` {v}" for k, v in sorted(types.items()) if v))
    w("")
    w("JSON Schema keywords seen in inputSchemas (any depth; keys of schema objects, not property names), "
      "with occurrence counts:")
    w("")
    w(", ".join(f"`{k}` {v}" for k, v in sorted(kw.items(), key=lambda x: (-x[1], x[0]))))
    w("")
    std = set("""$schema $id $ref $defs $comment $anchor $dynamicRef $dynamicAnchor $vocabulary definitions
        type enum const title description default examples deprecated readOnly writeOnly format
        properties patternProperties additionalProperties propertyNames required minProperties maxProperties
        dependentRequired dependentSchemas dependencies unevaluatedProperties unevaluatedItems
        items prefixItems additionalItems contains minContains maxContains minItems maxItems uniqueItems
        minLength maxLength pattern contentEncoding contentMediaType contentSchema
        minimum maximum exclusiveMinimum exclusiveMaximum multipleOf
        allOf anyOf oneOf not if then else""".split())
    nonstd = sorted((k for k in kw if k not in std), key=lambda k: -kw[k])
    w("Keys in schema objects that are not JSON Schema (draft-04 .. 2020-12) keywords: "
      + ("; ".join(f"`{k}` {kw[k]} (e.g. {kw_example.get(k, '?')})" for k in nonstd) if nonstd else "none"))
    w("")
    sch_ver = Counter(t["inputSchema"].get("$schema") for _, t in tools
                      if isinstance(t.get("inputSchema"), dict) and "$schema" in t["inputSchema"])
    if sch_ver:
        w("`$schema` values at the root: " + ", ".join(f"`{k}` {v}" for k, v in sch_ver.items()))
        w("")

    # ------------------------------------------------------------ optional fields
    w("## Optional tool fields")
    w("")
    has = Counter()
    for _, t in tools:
        for k in t:
            has[k] += 1
    w("| field | tools having it |")
    w("| --- | --- |")
    for k, v in sorted(has.items(), key=lambda x: (-x[1], x[0])):
        w(f"| `{k}` | {v} |")
    w("")
    known = {"name", "title", "description", "inputSchema", "outputSchema", "annotations", "_meta", "icons",
             "execution"}
    unknown = sorted(k for k in has if k not in known)
    w("Top-level tool keys outside the MCP spec's Tool fields (name, title, description, inputSchema, "
      "outputSchema, annotations, icons, execution, _meta): " + (", ".join(f"`{k}`" for k in unknown) or "none"))
    w("")
    ann = Counter()
    ann_vals = defaultdict(Counter)
    for _, t in tools:
        a = t.get("annotations")
        if isinstance(a, dict):
            for k, v in a.items():
                ann[k] += 1
                ann_vals[k][json.dumps(v, ensure_ascii=False)[:40]] += 1
    if ann:
        w("Annotation keys: " + ", ".join(f"`{k}` {v}" for k, v in sorted(ann.items(), key=lambda x: -x[1])))
        w("")
        for k in ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"):
            if k in ann_vals:
                w(f"- `{k}` values: " + ", ".join(f"{v} x{n}" for v, n in ann_vals[k].most_common()))
        w("")
    if out_size:
        osz = [x[0] for x in out_size]
        big = max(out_size)
        w(f"outputSchema size: max {big[0]} bytes (`{big[2]}`, {big[1]}), p99 {pct(osz, 99)}, median {median(osz)}")
        w("")

    # ------------------------------------------------------------ whole tool / server
    w("## Whole tool objects and tools/list results")
    w("")
    ts = [x[0] for x in tool_size]
    bt = max(tool_size, default=(0, "", ""))
    w(f"- one tool object, compact JSON: max {bt[0]} bytes (`{bt[2]}`, {bt[1]}), p99 {pct(ts, 99)}, "
      f"median {median(ts)}")
    ss = sorted(server_size, reverse=True)
    if ss:
        w(f"- all tools of one server, compact JSON: max {ss[0][0]} bytes ({ss[0][1]}), median "
          f"{median([x[0] for x in ss])}")
    tc = sorted(((len(s["tools"]), s["id"]) for s in servers), reverse=True)
    if tc:
        w(f"- tools per server: max {tc[0][0]} ({tc[0][1]}), median {median([x[0] for x in tc])}, "
          f"min {tc[-1][0]} ({tc[-1][1]})")
    pages = Counter(s.get("tools_list_pages", 1) for s in servers)
    w("- tools/list pages per server: " + ", ".join(f"{k} page(s): {v}" for k, v in sorted(pages.items())))
    w("")

    # ------------------------------------------------------------ duplicates
    w("## Duplicate names")
    w("")
    dup_within = []
    for s in servers:
        c = Counter(t.get("name") for t in s["tools"])
        for n, k in c.items():
            if k > 1:
                dup_within.append((s["id"], n, k))
    w("Duplicate tool names within one server: "
      + (", ".join(f"`{n}` x{k} ({sid})" for sid, n, k in dup_within) if dup_within else "none"))
    w("")
    across = defaultdict(set)
    for sid, t in tools:
        across[t.get("name")].add(sid)
    shared = sorted(((len(v), n, sorted(v)) for n, v in across.items() if len(v) > 1), key=lambda x: (-x[0], x[1]))
    w(f"Tool names exposed by more than one server: {len(shared)} distinct names")
    w("")
    for k, n, sids in shared[:40]:
        w(f"- `{n}`: {k} servers ({', '.join(sids)})")
    if len(shared) > 40:
        w(f"- ... and {len(shared) - 40} more")
    w("")
    lower = defaultdict(set)
    for sid, t in tools:
        n = t.get("name") or ""
        lower[re.sub(r"[-_.]", "_", n.lower())].add((sid, n))
    near = [(k, sorted(v)) for k, v in lower.items() if len({n for _, n in v}) > 1]
    if near:
        w("Names equal after lower-casing and mapping `-`/`.` to `_` but spelled differently:")
        w("")
        for k, v in sorted(near)[:30]:
            w(f"- " + ", ".join(f"`{n}` ({sid})" for sid, n in v))
        w("")

    # ------------------------------------------------------------ per server
    w("## Per server")
    w("")
    w("| id | package@version | domain | tools | max name | max description | max inputSchema bytes | "
      "title | outputSchema | annotations |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in servers:
        ts_ = s["tools"]
        w(f"| {s['id']} | `{s['package']}@{s['version']}` | {s['domain']} | {len(ts_)} | "
          f"{max((len(t.get('name') or '') for t in ts_), default=0)} | "
          f"{max((len(t.get('description') or '') for t in ts_), default=0)} | "
          f"{max((len(compact(t.get('inputSchema')).encode()) for t in ts_), default=0)} | "
          f"{sum(1 for t in ts_ if 'title' in t)} | {sum(1 for t in ts_ if 'outputSchema' in t)} | "
          f"{sum(1 for t in ts_ if 'annotations' in t)} |")
    w("")
    if skipped:
        w("## Skipped servers")
        w("")
        for e in skipped:
            first = e["reason"].strip().splitlines()[0][:160] if e.get("reason") else ""
            w(f"- {e['id']} (`{e['package']}@{e.get('version', '?')}`), {e.get('stage', '?')}: {first}")
        w("")
    notes = [(s["id"], s["json_roundtrip_notes"]) for s in servers if s.get("json_roundtrip_notes")]
    if notes:
        w("## JSON round-trip notes")
        w("")
        for sid, ns in notes:
            w(f"- {sid}: " + "; ".join(ns))
        w("")

    OUT.write_text("\n".join(L), encoding="utf-8")
    print(f"wrote {OUT.relative_to(EVAL_DIR.parent)}: {len(servers)} servers, {len(tools)} tools", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
