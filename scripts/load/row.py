"""One Markdown row from wrk's JSON summary line: row.py LABEL CLIENTS JSON."""
import json
import sys

label, clients, line = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.loads(line)
errors = r["socket_errors"] + r["status_errors"]
print(f"| {label} | {clients} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {errors} |")
