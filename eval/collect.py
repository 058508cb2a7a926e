#!/usr/bin/env python3
"""Collect the tool definitions of real MCP servers into eval/corpus/.

For every server configured in eval/servers.toml this script

  1. installs the pinned package (npm into its own prefix, PyPI into its own
     virtualenv) under the cache directory ${MTGS_EVAL_CACHE:-~/.cache/mtgs-eval},
  2. starts it over stdio with dummy credentials (in a network namespace with
     no network at all when `unshare -n` works, so nothing can leave the box),
  3. performs the MCP handshake (initialize + notifications/initialized),
  4. calls tools/list, following nextCursor pagination,
  5. writes eval/corpus/<id>.json with the tools exactly as returned.

Servers that cannot be installed, started or listed are recorded with the
actual error in eval/corpus/skipped.json.

The MCP client is implemented here with the standard library only (a
line-delimited JSON-RPC client over the child's stdin/stdout), so the tool
objects are never passed through an SDK model that could drop or rewrite
fields.

Usage:
  python3 eval/collect.py              # collect every configured server
  python3 eval/collect.py --only ID    # collect one server (repeatable)
  python3 eval/collect.py --list       # show configured servers
  python3 eval/collect.py --stats      # (re)generate eval/corpus/STATS.md only
  python3 eval/collect.py --jobs 1     # one server at a time (default 3 in parallel)

Requires Python >= 3.11 (tomllib), Node >= 18 with npm for npm servers.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parent
CORPUS_DIR = EVAL_DIR / "corpus"
SERVERS_FILE = EVAL_DIR / "servers.toml"
CACHE_DIR = Path(os.environ.get("MTGS_EVAL_CACHE") or Path.home() / ".cache" / "mtgs-eval").resolve()
CACHE_TOKEN = "${MTGS_EVAL_CACHE}"
# Servers' working directories live at a fixed path, not under the cache, because a
# few servers put their working directory into tool definitions (e.g. a default).
SANDBOX_ROOT = Path(os.environ.get("MTGS_EVAL_SANDBOX") or "/tmp/mtgs-eval-sandbox").resolve()
SANDBOX_TOKEN = "${MTGS_EVAL_SANDBOX}"

CLIENT_INFO = {"name": "mtgs-eval-collector", "version": "0.1.0"}
DEFAULT_PROTOCOL_VERSION = "2025-06-18"
DEFAULT_START_TIMEOUT = 90.0   # seconds to answer initialize
DEFAULT_LIST_TIMEOUT = 60.0    # seconds per tools/list page
INSTALL_TIMEOUT = 1200.0       # seconds per package install
MAX_PAGES = 200

# Never let an install fetch browsers or other binaries from outside a registry.
INSTALL_ENV = {
    "PUPPETEER_SKIP_DOWNLOAD": "1",
    "PUPPETEER_SKIP_CHROMIUM_DOWNLOAD": "1",
    "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
    "PLAYWRIGHT_BROWSERS_PATH": "0",
    "CYPRESS_INSTALL_BINARY": "0",
    "ELECTRON_SKIP_BINARY_DOWNLOAD": "1",
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}

_log_lock = threading.Lock()


def log(sid: str, msg: str) -> None:
    with _log_lock:
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {sid:>20}: {msg}\n")
        sys.stderr.flush()


class CollectError(Exception):
    def __init__(self, stage: str, reason: str):
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


# --------------------------------------------------------------------------
# configuration


def load_servers() -> list[dict]:
    with open(SERVERS_FILE, "rb") as f:
        data = tomllib.load(f)
    servers = data.get("server", [])
    seen = set()
    for s in servers:
        for key in ("id", "registry", "package", "version", "domain"):
            if key not in s:
                raise SystemExit(f"servers.toml: entry {s!r} lacks {key!r}")
        if s["registry"] not in ("npm", "pypi"):
            raise SystemExit(f"servers.toml: {s['id']}: registry must be npm or pypi")
        if s["id"] in seen:
            raise SystemExit(f"servers.toml: duplicate id {s['id']}")
        seen.add(s["id"])
    return servers


def expand(value: str, sid: str) -> str:
    return (value.replace("{sandbox}", str(sandbox_dir(sid)))
                 .replace("{cache}", str(CACHE_DIR)))


def templ(value: str) -> str:
    """Replace the local cache path by a portable token in recorded launch data."""
    return value.replace(str(SANDBOX_ROOT), SANDBOX_TOKEN).replace(str(CACHE_DIR), CACHE_TOKEN)


def sandbox_dir(sid: str) -> Path:
    return SANDBOX_ROOT / sid


# --------------------------------------------------------------------------
# installation


def run_logged(cmd: list[str], cwd: Path, env: dict, logfile: Path, timeout: float) -> None:
    with open(logfile, "ab") as lf:
        lf.write(("\n$ " + " ".join(cmd) + "\n").encode())
        lf.flush()
        try:
            p = subprocess.run(cmd, cwd=cwd, env=env, stdout=lf, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CollectError("install", f"timeout after {timeout:.0f}s: {' '.join(cmd)}")
    if p.returncode != 0:
        tail = logfile.read_bytes()[-3000:].decode("utf-8", "replace")
        tail = "\n".join(ln for ln in tail.splitlines() if "complete log of this run" not in ln)[-2500:]
        raise CollectError("install", f"exit {p.returncode}: {' '.join(cmd)}\n{tail}")


def find_python(want: str | None) -> str:
    if not want:
        return sys.executable
    candidates = [f"python{want}"]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{want}*/bin/python{want}")), reverse=True)
    candidates += [f"/usr/bin/python{want}", f"/usr/local/bin/python{want}"]
    for c in candidates:
        exe = shutil.which(c) or (c if os.path.isfile(c) else None)
        if not exe:
            continue
        try:
            subprocess.run([exe, "-c", "import venv"], check=True, capture_output=True, timeout=30)
            return exe
        except Exception:
            continue
    raise CollectError("install", f"no working python{want} found (tried {candidates})")


def install(s: dict) -> Path:
    sid, pkg, ver = s["id"], s["package"], s["version"]
    spec = f"{pkg}@{ver}" if s["registry"] == "npm" else f"{pkg}=={ver}"
    want = json.dumps({"spec": spec, "python": s.get("python"), "extra": s.get("extra_packages", []),
                       "ignore_scripts": s.get("npm_ignore_scripts", False),
                       "overrides": s.get("npm_overrides")},
                      sort_keys=True)
    d = CACHE_DIR / s["registry"] / sid
    marker = d / ".mtgs-installed"
    if marker.exists() and marker.read_text() == want:
        log(sid, f"already installed {spec}")
        return d
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    env = dict(os.environ, **INSTALL_ENV, **s.get("install_env", {}))
    logfile = d / "install.log"
    t0 = time.time()
    log(sid, f"installing {spec}")
    if s["registry"] == "npm":
        pj = {"name": f"mtgs-eval-{sid}", "private": True}
        if s.get("npm_overrides"):
            pj["overrides"] = s["npm_overrides"]
        (d / "package.json").write_text(json.dumps(pj) + "\n")
        cmd = ["npm", "install", "--save-exact", "--no-audit", "--no-fund", "--loglevel=error", spec]
        if s.get("npm_ignore_scripts"):
            cmd.append("--ignore-scripts")
        cmd += s.get("extra_packages", [])
        run_logged(cmd, d, env, logfile, INSTALL_TIMEOUT)
    else:
        py = find_python(s.get("python"))
        run_logged([py, "-m", "venv", str(d / "venv")], d, env, logfile, 300)
        pip = str(d / "venv" / "bin" / "pip")
        run_logged([pip, "install", "--quiet", spec] + s.get("extra_packages", []), d, env, logfile, INSTALL_TIMEOUT)
    marker.write_text(want)
    log(sid, f"installed in {time.time() - t0:.0f}s")
    return d


def resolve_command(s: dict, d: Path) -> list[str]:
    """argv to start the server (before placeholder expansion of args)."""
    sid = s["id"]
    if s["registry"] == "pypi":
        binname = s.get("bin", s["package"])
        if binname.startswith("-m "):
            return [str(d / "venv" / "bin" / "python"), "-m", binname[3:].strip()]
        exe = d / "venv" / "bin" / binname
        if not exe.exists():
            avail = sorted(p.name for p in (d / "venv" / "bin").iterdir())
            raise CollectError("launch", f"console script {binname!r} not found; have {avail}")
        return [str(exe)]
    pkgdir = d / "node_modules" / s["package"]
    if s.get("entry"):  # package without a bin: run this file of the package with node
        return ["node", str((pkgdir / s["entry"]).resolve())]
    meta = json.loads((pkgdir / "package.json").read_text())
    bins = meta.get("bin")
    if isinstance(bins, str):
        bins = {meta["name"].split("/")[-1]: bins}
    bins = bins or {}
    binname = s.get("bin")
    if binname is None:
        if len(bins) != 1:
            raise CollectError("launch", f"package has bins {sorted(bins)}; set 'bin' in servers.toml")
        binname = next(iter(bins))
    if binname not in bins:
        raise CollectError("launch", f"bin {binname!r} not in package bins {sorted(bins)}")
    target = (pkgdir / bins[binname]).resolve()
    if target.suffix in (".js", ".mjs", ".cjs") or target.read_bytes()[:64].startswith(b"#!/usr/bin/env node"):
        return ["node", str(target)]
    return [str(target)]


# --------------------------------------------------------------------------
# MCP stdio client


class LossyJson:
    """Records JSON features whose text Python would not round-trip exactly."""

    def __init__(self):
        self.notes: list[str] = []

    def parse_float(self, text: str) -> float:
        v = float(text)
        if repr(v) != text and len(self.notes) < 20:
            self.notes.append(f"number {text} is re-serialised as {v!r}")
        return v

    def pairs(self, pairs: list) -> dict:
        d = dict(pairs)
        if len(d) != len(pairs) and len(self.notes) < 20:
            keys = [k for k, _ in pairs]
            dups = sorted({k for k in keys if keys.count(k) > 1})
            self.notes.append(f"duplicate object keys {dups} (last value kept)")
        return d

    def loads(self, line: str):
        return json.loads(line, object_pairs_hook=self.pairs, parse_float=self.parse_float)


class StdioClient:
    def __init__(self, sid: str, argv: list[str], env: dict, cwd: Path, stderr_path: Path):
        self.sid = sid
        self.stderr_path = stderr_path
        self._stderr_f = open(stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr_f, env=env, cwd=cwd, start_new_session=True)
        self.q: queue.Queue = queue.Queue()
        self.noise: list[str] = []
        self.lossy = LossyJson()
        self.list_changed = False
        self.next_id = 1
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                msg = self.lossy.loads(line)
            except ValueError:
                if len(self.noise) < 20:
                    self.noise.append(line[:300])
                continue
            self.q.put((msg, line))
        self.q.put(None)

    def send(self, msg: dict) -> None:
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise CollectError("start", f"cannot write to server stdin ({e}); {self.describe_exit()}")

    def notify(self, method: str, params: dict | None = None) -> None:
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def _answer_server_request(self, msg: dict) -> None:
        method = msg.get("method")
        if method == "ping":
            result = {}
        elif method == "roots/list":
            result = {"roots": []}
        else:
            self.send({"jsonrpc": "2.0", "id": msg["id"],
                       "error": {"code": -32601, "message": f"client does not support {method}"}})
            return
        self.send({"jsonrpc": "2.0", "id": msg["id"], "result": result})

    def request(self, method: str, params: dict, timeout: float, stage: str) -> dict:
        return self.request_raw(method, params, timeout, stage)[0]

    def request_raw(self, method: str, params: dict, timeout: float, stage: str) -> tuple[dict, str]:
        """Send a request; return its result and the raw line that carried the response."""
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise CollectError(stage, f"no answer to {method} within {timeout:.0f}s; {self.describe_exit()}")
            try:
                item = self.q.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if item is None:
                time.sleep(0.3)
                raise CollectError(stage, f"server closed stdout before answering {method}; {self.describe_exit()}")
            msg, line = item
            if not isinstance(msg, dict):
                continue
            if "method" in msg and "id" in msg:
                self._answer_server_request(msg)
                continue
            if "method" in msg:
                if msg["method"] == "notifications/tools/list_changed":
                    self.list_changed = True
                continue
            if msg.get("id") != rid:
                continue
            if "error" in msg:
                raise CollectError(stage, f"{method} returned error {json.dumps(msg['error'], ensure_ascii=False)[:1500]}")
            return msg.get("result", {}), line

    def stderr_tail(self, n: int = 1500) -> str:
        try:
            self._stderr_f.flush()
            data = self.stderr_path.read_bytes()
        except OSError:
            return ""
        return data[-n:].decode("utf-8", "replace").strip()

    def describe_exit(self) -> str:
        rc = self.proc.poll()
        state = "still running" if rc is None else f"exited with code {rc}"
        parts = [f"process {state}"]
        tail = self.stderr_tail()
        if tail:
            parts.append(f"stderr tail:\n{tail}")
        if self.noise:
            parts.append("non-JSON stdout: " + " | ".join(self.noise[:5]))
        return "; ".join(parts)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        for sig, wait in ((None, 3), (signal.SIGTERM, 3), (signal.SIGKILL, 3)):
            if sig is not None:
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
            try:
                self.proc.wait(timeout=wait)
                if sig is None:
                    # leader exited on EOF; make sure no child stays behind
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                break
            except subprocess.TimeoutExpired:
                continue
        self._stderr_f.close()


_netns_ok: bool | None = None


def netns_prefix() -> list[str]:
    global _netns_ok
    if os.environ.get("MTGS_EVAL_ALLOW_NETWORK") == "1":
        return []
    if _netns_ok is None:
        try:
            _netns_ok = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _netns_ok = False
        if not _netns_ok:
            log("-", "warning: 'unshare -n' unavailable; servers run with the host network")
    if not _netns_ok:
        return []
    if shutil.which("ip"):  # bring loopback up, so the box looks like an offline host
        return ["unshare", "-n", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh"]
    return ["unshare", "-n"]


def collect_one(s: dict, protocol_version: str) -> dict:
    sid = s["id"]
    d = install(s)
    base = resolve_command(s, d)
    args = [expand(a, sid) for a in s.get("args", [])]
    argv = base + args
    sb = sandbox_dir(sid)
    if sb.exists():
        shutil.rmtree(sb)
    (sb / "home").mkdir(parents=True)
    for cmd in s.get("setup", []):  # shell commands run in the sandbox before launch
        r = subprocess.run(expand(cmd, sid), shell=True, cwd=sb, capture_output=True, timeout=120,
                           env=dict(os.environ, HOME=str(sb / "home")))
        if r.returncode != 0:
            raise CollectError("setup", f"{cmd!r} failed: {r.stderr.decode(errors='replace')[-800:]}")
    dummy_env = {k: expand(str(v), sid) for k, v in s.get("env", {}).items()}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(sb / "home"),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONHASHSEED": "0",  # some servers build defaults from Python sets
        "PLAYWRIGHT_BROWSERS_PATH": "0",
        **dummy_env,
    }
    full = netns_prefix() + argv
    log(sid, "starting " + " ".join(templ(a) for a in argv))
    client = StdioClient(sid, full, env, sb, d / "server.stderr")
    try:
        init = client.request("initialize", {
            "protocolVersion": protocol_version,
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        }, s.get("start_timeout", DEFAULT_START_TIMEOUT), "initialize")
        client.notify("notifications/initialized")
        if s.get("settle"):
            time.sleep(float(s["settle"]))

        wire_mismatch: list = []

        def list_all() -> tuple[list, int]:
            wire_mismatch.clear()
            tools, cursor, pages = [], None, 0
            while True:
                params = {"cursor": cursor} if cursor is not None else {}
                res, line = client.request_raw("tools/list", params,
                                               s.get("list_timeout", DEFAULT_LIST_TIMEOUT), "tools/list")
                pages += 1
                page = res.get("tools")
                if not isinstance(page, list):
                    raise CollectError("tools/list", f"result has no tools array: {json.dumps(res)[:500]}")
                # Is every tool, re-serialised compactly, a verbatim slice of the wire line?
                for t in page:
                    if json.dumps(t, separators=(",", ":"), ensure_ascii=False) not in line:
                        wire_mismatch.append(t.get("name") if isinstance(t, dict) else repr(t)[:40])
                tools.extend(page)
                cursor = res.get("nextCursor")
                if not cursor:
                    return tools, pages
                if pages >= MAX_PAGES:
                    raise CollectError("tools/list", f"more than {MAX_PAGES} pages")

        tools, pages = list_all()
        for _ in range(3):  # a server may announce its tools only after start-up
            time.sleep(0.5)
            if not client.list_changed:
                break
            client.list_changed = False
            log(sid, "tools/list_changed received; listing again")
            tools, pages = list_all()
        if not tools:
            raise CollectError("tools/list", f"server returned no tools; {client.describe_exit()}")
    finally:
        client.close()

    rec = {
        "id": sid,
        "package": s["package"],
        "registry": s["registry"],
        "version": s["version"],
        "domain": s["domain"],
        "launch": {
            "command": templ(argv[0]),
            "args": [templ(a) for a in argv[1:]],
            "env": {k: templ(v) for k, v in dummy_env.items()},
        },
        "server_info": init.get("serverInfo"),
        "protocol_version": init.get("protocolVersion"),
        "server_capabilities": init.get("capabilities"),
    }
    if "instructions" in init:
        rec["instructions"] = init["instructions"]
    rec["tools_list_pages"] = pages
    rec["network_isolated"] = bool(netns_prefix())
    # true when each stored tool, dumped as compact JSON, appears byte-for-byte in the
    # tools/list response line the server wrote
    rec["tools_match_wire_bytes"] = not wire_mismatch
    if wire_mismatch:
        rec["tools_not_matching_wire_bytes"] = wire_mismatch[:50]
    if client.lossy.notes:
        rec["json_roundtrip_notes"] = client.lossy.notes
    rec["tools"] = tools
    return rec


# --------------------------------------------------------------------------
# driver


def write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def short_reason(e: BaseException) -> str:
    text = str(e.reason) if isinstance(e, CollectError) else f"{type(e).__name__}: {e}"
    text = templ(text)
    return text if len(text) <= 4000 else text[:4000] + " ...[truncated]"


_STRONG = re.compile(r"\b\w*Error\b ?[:\[]|ERROR: No matching|ERROR: Could not|Fatal|npm error 404 Not Found|"
                     r"notarget|ENOTFOUND|ECONNREFUSED|ENETUNREACH|Maximum retries|Missing required")
_WEAK = re.compile(r"Error|ERROR|error|fatal|Missing|missing|Cannot|cannot|not found|No matching|requires")
_NOISE = ("complete log of this run", "Note that you can also", "DeprecationWarning", "--trace-",
          "gyp ERR! cwd", "gyp ERR! node -v", "gyp ERR! System", "gyp ERR! command", "npm error code",
          "new Error(", "Ignored the following versions")


def summarize(reason: str) -> str:
    """One line of an error that says what went wrong (for skipped.json / STATS.md)."""
    lines = [ln.strip() for ln in reason.splitlines() if ln.strip()]
    body = [ln for ln in lines[1:] if not ln.startswith(("at ", "$ ")) and not any(n in ln for n in _NOISE)]
    for pat in (_STRONG, _WEAK):
        for ln in body:
            if pat.search(ln):
                return f"{lines[0].split(';')[0]}: {ln}"[:300]
    return lines[0][:300] if lines else ""


def process(s: dict, protocol_version: str) -> tuple[str, dict | None, dict | None]:
    sid = s["id"]
    t0 = time.time()
    try:
        rec = collect_one(s, protocol_version)
    except Exception as e:  # record every failure with its real error
        stage = e.stage if isinstance(e, CollectError) else "internal"
        log(sid, f"SKIPPED ({stage}) after {time.time() - t0:.0f}s: {short_reason(e).splitlines()[0][:200]}")
        return sid, None, {"id": sid, "package": s["package"], "version": s["version"],
                           "registry": s["registry"], "domain": s["domain"], "stage": stage,
                           "summary": summarize(short_reason(e)), "reason": short_reason(e)}
    write_json(CORPUS_DIR / f"{sid}.json", rec)
    log(sid, f"OK {len(rec['tools'])} tools in {time.time() - t0:.0f}s")
    return sid, rec, None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", metavar="ID", help="collect only this server (repeatable)")
    ap.add_argument("--list", action="store_true", help="list configured servers and exit")
    ap.add_argument("--stats", action="store_true", help="only regenerate corpus/STATS.md")
    ap.add_argument("--no-stats", action="store_true", help="do not regenerate STATS.md after collecting")
    ap.add_argument("--jobs", type=int, default=3, help="servers collected in parallel (default 3)")
    ap.add_argument("--protocol-version", default=DEFAULT_PROTOCOL_VERSION)
    a = ap.parse_args()

    servers = load_servers()
    if a.list:
        for s in servers:
            state = "collected" if (CORPUS_DIR / f"{s['id']}.json").exists() else "-"
            spec = f"{s['package']}@{s['version']}"
            try:
                print(f"{s['id']:<22} {s['registry']:<5} {spec:<58} {s['domain']:<14} {state}")
            except BrokenPipeError:
                return 0
        return 0
    if a.stats:
        return run_stats()

    by_id = {s["id"]: s for s in servers}
    if a.only:
        unknown = [i for i in a.only if i not in by_id]
        if unknown:
            print(f"unknown id(s): {unknown}; see --list", file=sys.stderr)
            return 2
        todo = [by_id[i] for i in a.only]
    else:
        todo = servers
    CORPUS_DIR.mkdir(parents=True, exist_ok=True)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    log("-", f"cache {CACHE_DIR}; {len(todo)} server(s); protocol {a.protocol_version}")
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        results = list(ex.map(lambda s: process(s, a.protocol_version), todo))

    skipped_path = CORPUS_DIR / "skipped.json"
    old = []
    if a.only and skipped_path.exists():
        old = [e for e in json.loads(skipped_path.read_text()) if e["id"] not in a.only and e["id"] in by_id]
    new = [skip for _, _, skip in results if skip]
    for sid, rec, skip in results:
        if skip:
            stale = CORPUS_DIR / f"{sid}.json"
            if stale.exists():
                stale.unlink()
    if not a.only:  # drop corpus files of servers no longer configured
        for p in CORPUS_DIR.glob("*.json"):
            if p.name != "skipped.json" and p.stem not in by_id:
                log("-", f"removing {p.name} (not in servers.toml)")
                p.unlink()
    order = {s["id"]: i for i, s in enumerate(servers)}
    write_json(skipped_path, sorted(old + new, key=lambda e: order.get(e["id"], 1 << 30)))

    ok = sum(1 for _, rec, _ in results if rec)
    log("-", f"done in {time.time() - t0:.0f}s: {ok} collected, {len(new)} skipped this run")
    if not a.no_stats:
        run_stats()
    return 0


def run_stats() -> int:
    sys.path.insert(0, str(EVAL_DIR))
    sys.dont_write_bytecode = True  # no __pycache__ in the repository
    import stats  # eval/stats.py
    return stats.main([])


if __name__ == "__main__":
    sys.exit(main())
