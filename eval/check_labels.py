#!/usr/bin/env python3
"""Validate eval/labels.json against eval/corpus/.

Checks:
- top-level shape: {"version": 1, "pairs": [...], "probes": [...]}, no other keys;
- every tool reference ({"server", "name"}) exists in the corpus
  (server = file stem of eval/corpus/<server>.json, name = a tool's `name` there);
- ids are unique (across pairs and probes), match pair-NNN / probe-NNN;
- pairs: a != b, conflict is a boolean, no pair listed twice in either order;
- probes: non-empty query, expected not repeated in alternatives,
  no duplicate alternatives;
- every reason is a non-empty single line.

Prints a summary and exits 1 if any error was found.

Usage: python3 eval/check_labels.py [path/to/labels.json]
Standard library only.
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"


def load_corpus():
    tools = {}
    for f in sorted(CORPUS.glob("*.json")):
        if f.name == "skipped.json":
            continue
        data = json.loads(f.read_text(encoding="utf-8"))
        tools[f.stem] = {t["name"] for t in data.get("tools", [])}
    return tools


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "labels.json"
    labels = json.loads(path.read_text(encoding="utf-8"))
    corpus = load_corpus()
    errors = []

    def err(where, msg):
        errors.append(f"{where}: {msg}")

    def check_ref(where, ref):
        if not isinstance(ref, dict) or set(ref) != {"server", "name"}:
            err(where, f"tool reference must be {{'server','name'}}, got {ref!r}")
            return None
        s, n = ref["server"], ref["name"]
        if s not in corpus:
            err(where, f"unknown server {s!r}")
            return None
        if n not in corpus[s]:
            err(where, f"tool {n!r} not in server {s!r}")
            return None
        return (s, n)

    def check_reason(where, r):
        if not isinstance(r, str) or not r.strip():
            err(where, "reason must be a non-empty string")
        elif "\n" in r or "\r" in r:
            err(where, "reason must be one line")

    if set(labels) != {"version", "pairs", "probes"}:
        err("top", f"keys must be version/pairs/probes, got {sorted(labels)}")
    if labels.get("version") != 1:
        err("top", f"version must be 1, got {labels.get('version')!r}")

    ids = Counter()
    seen_pairs = {}
    servers = set()
    n_conflict = n_clear = 0
    pair_keys = {"id", "a", "b", "conflict", "reason"}
    for i, p in enumerate(labels.get("pairs", [])):
        where = f"pairs[{i}] {p.get('id', '?')}"
        if set(p) != pair_keys:
            err(where, f"keys must be {sorted(pair_keys)}, got {sorted(p)}")
        pid = p.get("id", "")
        ids[pid] += 1
        if not re.fullmatch(r"pair-\d{3,}", str(pid)):
            err(where, "id must look like pair-001")
        a = check_ref(where + " a", p.get("a"))
        b = check_ref(where + " b", p.get("b"))
        if not isinstance(p.get("conflict"), bool):
            err(where, "conflict must be true or false")
        elif p["conflict"]:
            n_conflict += 1
        else:
            n_clear += 1
        check_reason(where, p.get("reason"))
        if a and b:
            servers.update([a[0], b[0]])
            if a == b:
                err(where, "a and b are the same tool")
            key = frozenset([a, b])
            if key in seen_pairs:
                err(where, f"same pair as {seen_pairs[key]}")
            else:
                seen_pairs[key] = pid

    probe_servers = set()
    probe_keys = {"id", "query", "expected", "alternatives", "reason"}
    n_alts = 0
    for i, q in enumerate(labels.get("probes", [])):
        where = f"probes[{i}] {q.get('id', '?')}"
        if set(q) != probe_keys:
            err(where, f"keys must be {sorted(probe_keys)}, got {sorted(q)}")
        qid = q.get("id", "")
        ids[qid] += 1
        if not re.fullmatch(r"probe-\d{3,}", str(qid)):
            err(where, "id must look like probe-001")
        if not isinstance(q.get("query"), str) or not q["query"].strip():
            err(where, "query must be a non-empty string")
        e = check_ref(where + " expected", q.get("expected"))
        if e:
            probe_servers.add(e[0])
        alts = q.get("alternatives")
        if not isinstance(alts, list):
            err(where, "alternatives must be a list")
            alts = []
        seen_alts = set()
        for j, r in enumerate(alts):
            ref = check_ref(f"{where} alternatives[{j}]", r)
            if ref is None:
                continue
            if ref == e:
                err(where, f"expected tool repeated in alternatives: {ref}")
            if ref in seen_alts:
                err(where, f"duplicate alternative {ref}")
            seen_alts.add(ref)
        n_alts += len(alts)
        check_reason(where, q.get("reason"))

    for k, v in ids.items():
        if v > 1:
            err("ids", f"{k!r} used {v} times")

    n_pairs = len(labels.get("pairs", []))
    n_probes = len(labels.get("probes", []))
    print(f"labels: {path}")
    print(f"pairs: {n_pairs} (conflict {n_conflict}, non-conflict {n_clear}), "
          f"servers in pairs: {len(servers)}")
    print(f"probes: {n_probes}, servers of expected tools: {len(probe_servers)}, "
          f"alternatives listed: {n_alts}")
    all_servers = servers | probe_servers
    print(f"servers referenced (pairs + probe expectations): {len(all_servers)} of {len(corpus)}")
    if errors:
        print(f"\n{len(errors)} error(s):")
        for e in errors:
            print("  " + e)
        return 1
    print("OK: no errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
