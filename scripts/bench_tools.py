#!/usr/bin/env python3
"""Helpers of scripts/bench.sh (standard library only).

    bench_tools.py gen KIND DEST N           generate a dataset; prints "FILES BYTES"
        KIND large: one file of N MiB (seed 1); KIND small: N files of 1-8 KiB in 100
        folders (seed 2; a smaller N gives a prefix of a larger N's files)
    bench_tools.py table OUT MIB K [PREV]    write version K of the versions workload's
        table to OUT; prints "ROWS BYTES". Version 1 is about MIB MiB of CSV rows (seed
        3); version K > 1 is PREV (version K-1) edited with a PRNG seeded with K: a few
        hundred rows inserted in the middle, a few runs of rows rewritten in place, 1 %
        of the rows appended. So version K is the same bytes on every run.
    bench_tools.py transfer-meta --meta M --prefix P FILE
        append the numeric fields of the `transfer` object of FILE (the output of
        `trove --json push`) to M as P.FIELD=VALUE lines
    bench_tools.py run --tsv F --log L --key DS/TOOL/STEP --run R [--stdout O] -- CMD...
        run CMD (its output appended to L), then append one line to F: the key, the run,
        wall-clock seconds, user and system CPU seconds, peak RSS (KiB), and the bytes
        the process tree read and wrote through read()/write() (rchar, wchar) and from /
        to the block device (read_bytes, write_bytes), from /proc/PID/io. With --stdout,
        CMD's standard output goes to O instead of L. Exits with CMD's status.
    bench_tools.py s3-requests LOG BUCKET
        count the requests in LOG, the log of s3s-fs run with RUST_LOG=s3s::service=debug
        (one `s3s::service: req: Request { method: M, uri: U, ...` line per request, U
        path-style: /BUCKET/KEY?QUERY); prints one line of counts by kind, as
        `total=N list=N get=N head=N put=N post=N delete=N other=N lists=PREFIX:N,...`:
        list is a GET of the bucket with list-type=2 (ListObjectsV2), whose prefixes are
        counted in lists; get, head, put, post and delete are the other requests by method.
    bench_tools.py s3-requests --text COUNTS
        COUNTS (the line above) in words.
    bench_tools.py s3-clear ROOT BUCKET PREFIX
        remove the objects under PREFIX/ of BUCKET from an s3s-fs folder ROOT: the folder
        ROOT/BUCKET/PREFIX and the metadata files (ROOT/.bucket-B64.object-B64...) of its
        keys, and leftovers of multipart uploads.
    bench_tools.py s3-dir-head ROOT BUCKET KEY
        make s3s-fs answer a HEAD of KEY, a "folder" of its ROOT/BUCKET, with 200 (an
        ETag of its own) instead of 500: s3s-fs 0.14.1 hashes the object's bytes for an
        ETag it has no record of, and a folder cannot be read (EISDIR). Real S3 answers
        404 there; DVC's fetch and pull check that their remote's root (KEY) exists first,
        and stop on the 500.
    bench_tools.py report --tsv F --meta M --json OUT
        medians, ratios, targets: markdown to stdout, everything to OUT as JSON.

How `run` measures: the wall clock (time.perf_counter) from just before posix_spawn to
the moment the child has exited (waitid with WNOWAIT, so that /proc/PID/io can still be
read), then wait4's rusage: ru_maxrss is the largest resident set of the process or of any
descendant it waited for - the figure GNU time prints as %M.
"""

import json
import os
import random
import statistics
import sys
import time

# ---------------------------------------------------------------------------------------
# gen


def gen(kind, dest, n):
    os.makedirs(dest)
    total = 0
    if kind == "large":
        rng = random.Random(1)
        chunk = 4 << 20
        left = n << 20
        with open(os.path.join(dest, "large.bin"), "wb") as f:
            while left:
                k = min(chunk, left)
                f.write(rng.randbytes(k))
                left -= k
        print(1, n << 20)
        return
    rng = random.Random(2)
    folders = 100
    for d in range(folders):
        os.mkdir(os.path.join(dest, f"part-{d:03}"))
    for i in range(n):
        size = rng.randint(1024, 8192)
        path = os.path.join(dest, f"part-{i % folders:03}", f"file-{i:05}.bin")
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        total += size
    print(n, total)


# ---------------------------------------------------------------------------------------
# table: the versions workload

# Short words for the text columns: repeated values, as real tables have, so that the
# table compresses somewhat.
WORDS = ("red green blue amber black white grey olive teal coral plum rose sand slate "
         "ivory navy lime mint ruby gold").split()
ITEMS = [f"{a} {b}" for a in WORDS for b in ("bolt nut gear pump valve hose belt fan "
                                              "cable plate").split()]
REGIONS = ["north", "south", "east", "west", "central", "coastal", "alpine", "delta"]
CUSTOMERS = [f"C{i:05}" for i in range(1024)]
# 4096 days from 2015-01-01.
DAYS = []


def _days():
    if not DAYS:
        import datetime
        d0 = datetime.date(2015, 1, 1)
        DAYS.extend((d0 + datetime.timedelta(days=i)).isoformat() for i in range(4096))
    return DAYS


def table_rows(rng, ids):
    """CSV rows (with their newline) for the row ids `ids`: one 64-bit draw per row picks
    a date, a customer, a region, an amount, a quantity, an item and a flag."""
    days = _days()
    out = []
    bits = rng.getrandbits
    for i in ids:
        r = bits(64)
        cents = (r >> 25) & 0xFFFFF
        out.append(f"{i},{days[r & 4095]},{CUSTOMERS[(r >> 12) & 1023]},"
                   f"{REGIONS[(r >> 22) & 7]},{cents // 100}.{cents % 100:02},"
                   f"{(r >> 45) & 127},{ITEMS[((r >> 52) & 255) % len(ITEMS)]},{(r >> 60) & 1}\n")
    return "".join(out)


TABLE_HEADER = "id,date,customer,region,amount,qty,item,flag\n"


def table(out, mib, k, prev=None):
    """Version k of the table (see the module doc); returns (rows, bytes)."""
    if k == 1:
        rng = random.Random(3)
        target = mib << 20
        size = len(TABLE_HEADER)
        rows = 0
        with open(out, "w", newline="") as f:
            f.write(TABLE_HEADER)
            while size < target:
                block = table_rows(rng, range(rows + 1, rows + 4097))
                if size + len(block) > target:
                    # The last block row by row, to stop at about the asked size.
                    lines = block.splitlines(keepends=True)
                    for line in lines:
                        if size >= target:
                            break
                        f.write(line)
                        size += len(line)
                        rows += 1
                    break
                f.write(block)
                size += len(block)
                rows += 4096
        return rows, size
    import itertools
    with open(prev, "rb") as f:
        n = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(8 << 20), b"")) - 1
        # The last row holds the largest id (new rows always get the next ids).
        f.seek(max(0, f.tell() - 4096))
        last_id = int(f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1].split(b",", 1)[0])
    rng = random.Random(1000 + k)
    # Edits, as (row index, kind, count): insert `count` new rows before the row; rewrite
    # `count` rows from it in place (same ids, new values). Inserts go in the middle half.
    edits = []
    for _ in range(2):
        edits.append((rng.randrange(n // 4, 3 * n // 4), "insert", rng.randint(100, 250)))
    for _ in range(4):
        edits.append((rng.randrange(0, n), "rewrite", rng.randint(20, 200)))
    edits.sort()
    next_id = last_id + 1
    pos = 0  # rows of prev consumed
    rows = 0
    with open(prev, newline="") as src, open(out, "w", newline="") as dst:
        dst.write(src.readline())  # the header
        for at, kind, count in edits:
            if at < pos:
                continue  # overlaps the previous rewrite: skip it
            dst.writelines(itertools.islice(src, at - pos))
            rows += at - pos
            pos = at
            if kind == "insert":
                dst.write(table_rows(rng, range(next_id, next_id + count)))
                next_id += count
                rows += count
            else:
                old = list(itertools.islice(src, count))
                ids = [int(line.split(",", 1)[0]) for line in old]
                dst.write(table_rows(rng, ids))
                pos += len(old)
                rows += len(old)
        for line in src:
            dst.write(line)
            rows += 1
        append = max(1, n // 100)
        dst.write(table_rows(rng, range(next_id, next_id + append)))
        rows += append
        size = dst.tell()
    return rows, size


def transfer_meta(args):
    opts = dict(zip(args[:-1:2], args[1:-1:2]))
    with open(args[-1]) as f:
        doc = json.load(f)
    fields = doc.get("transfer", {})
    with open(opts["--meta"], "a") as f:
        for k, v in sorted(fields.items()):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                f.write(f"{opts['--prefix']}.{k}={v}\n")
    return 0


# ---------------------------------------------------------------------------------------
# s3s-fs: requests in its log, clearing a prefix

S3_KINDS = ["list", "get", "head", "put", "post", "delete", "other"]
S3_KIND_WORD = {"list": "LIST", "get": "GET", "head": "HEAD", "put": "PUT", "post": "POST",
                "delete": "DELETE", "other": "other"}


def s3_count(log, bucket):
    import re
    from urllib.parse import parse_qs, unquote, urlsplit
    req = re.compile(r"s3s::service: req: Request \{ method: ([A-Z]+), uri: ([^ ,]+)")
    counts = dict.fromkeys(S3_KINDS, 0)
    lists = {}
    with open(log, errors="replace") as f:
        for line in f:
            m = req.search(line)
            if not m:
                continue
            method, uri = m.groups()
            parts = urlsplit(uri)
            path = unquote(parts.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            on_bucket = path.rstrip("/") == "/" + bucket
            if method == "GET" and on_bucket and query.get("list-type") == ["2"]:
                kind = "list"
                prefix = query.get("prefix", [""])[0]
                lists[prefix] = lists.get(prefix, 0) + 1
            else:
                kind = method.lower() if method.lower() in counts else "other"
            counts[kind] += 1
    total = sum(counts.values())
    cells = [f"total={total}"] + [f"{k}={counts[k]}" for k in S3_KINDS]
    # Prefixes have no commas or colons here (trove's and DVC's keys are hex and slashes).
    cells.append("lists=" + ",".join(f"{p or '/'}:{n}" for p, n in sorted(lists.items())))
    return " ".join(cells)


def s3_parse(counts):
    """The line of s3_count as {"total": N, kinds..., "lists": {prefix: n}}."""
    out = {"lists": {}}
    for cell in counts.split():
        k, v = cell.split("=", 1)
        if k == "lists":
            for item in filter(None, v.split(",")):
                p, n = item.rsplit(":", 1)
                out["lists"][p] = int(n)
        else:
            out[k] = int(v)
    return out


def s3_text(counts):
    c = s3_parse(counts) if isinstance(counts, str) else counts
    kinds = ", ".join(f"{c[k]} {S3_KIND_WORD[k]}" for k in S3_KINDS if c.get(k))
    text = f"{c['total']} request{'s' if c['total'] != 1 else ''}"
    if kinds:
        text += f": {kinds}"
    if c["lists"]:
        shown = sorted(c["lists"].items(), key=lambda x: (-x[1], x[0]))
        more = f", +{len(shown) - 3} more" if len(shown) > 3 else ""
        text += " (LIST of " + ", ".join(f"{p} ×{n}" if n > 1 else p for p, n in shown[:3]) + more + ")"
    return text


def s3_requests(args):
    if args and args[0] == "--text":
        print(s3_text(args[1]))
        return 0
    print(s3_count(args[0], args[1]))
    return 0


def s3_clear(root, bucket, prefix):
    import base64
    import shutil
    prefix = prefix.strip("/")
    shutil.rmtree(os.path.join(root, bucket, prefix), ignore_errors=True)
    b64 = base64.urlsafe_b64encode(bucket.encode()).rstrip(b"=").decode()
    head = f".bucket-{b64}.object-"
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if name.startswith(head):
            enc = name[len(head):].split(".", 1)[0]
            key = base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4)).decode(errors="replace")
            if key == prefix or key.startswith(prefix + "/"):
                os.remove(path)
        elif name.startswith(".upload"):
            # Parts and records of multipart uploads: none is in flight between steps.
            os.remove(path)
    return 0


def s3_dir_head(root, bucket, key):
    import base64

    def b64(x):
        return base64.urlsafe_b64encode(x.encode()).rstrip(b"=").decode()
    path = os.path.join(root, f".bucket-{b64(bucket)}.object-{b64(key.strip('/'))}.internal.json")
    with open(path, "w") as f:
        # The MD5 of nothing: what S3 reports for an empty object.
        json.dump({"e_tag": "d41d8cd98f00b204e9800998ecf8427e"}, f)
    return 0


# ---------------------------------------------------------------------------------------
# run


def run(args):
    opts = {}
    while args and args[0] != "--":
        opts[args[0]] = args[1]
        args = args[2:]
    cmd = args[1:]
    log = os.open(opts["--log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    out = log
    if "--stdout" in opts:
        out = os.open(opts["--stdout"], os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
    actions = [
        (os.POSIX_SPAWN_DUP2, out, 1),
        (os.POSIX_SPAWN_DUP2, log, 2),
        (os.POSIX_SPAWN_CLOSE, 0),
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
    ]
    start = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=actions)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    wall = time.perf_counter() - start
    io = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                k, v = line.split(":")
                io[k] = int(v)
    except OSError:
        pass
    _, status, ru = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        return code if code > 0 else 128 - code
    fields = [
        opts["--key"],
        opts["--run"],
        f"{wall:.4f}",
        f"{ru.ru_utime:.3f}",
        f"{ru.ru_stime:.3f}",
        str(ru.ru_maxrss),
        str(io.get("rchar", -1)),
        str(io.get("wchar", -1)),
        str(io.get("read_bytes", -1)),
        str(io.get("write_bytes", -1)),
    ]
    with open(opts["--tsv"], "a") as f:
        f.write("\t".join(fields) + "\n")
    key = opts["--key"]
    print(f"  {key:<40} {wall:8.3f} s   RSS {ru.ru_maxrss / 1024:5.0f} MiB", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------
# report

# Steps in table order: key, label, reference key.
STEPS = [
    ("add", "add, copy mode", "cp"),
    ("add_hl", "add, hardlink mode", "cp_al"),
    ("status1", "status, first run after add", "walk"),
    ("status", "status, nothing changed", "walk"),
    ("restore", "checkout after deleting the data, copy", "cp"),
    ("restore_hl", "checkout after deleting the data, hardlink", "cp_al"),
    ("noop", "checkout, nothing to do", "walk"),
    ("push_folder", "push to a folder remote", "cp"),
    ("push_folder_noop", "push to the folder remote again, nothing to send", None),
    ("status_remote_folder", "status --remote (folder), in sync", None),
    ("fetch_folder", "fetch from the folder remote into an empty cache (no checkout)", "cp"),
    ("pull_folder", "pull from the folder remote into a fresh clone (fetch + checkout)", "cp"),
    ("push_sftp", "push over SFTP", "tar_up"),
    ("push_sftp_noop", "push over SFTP again, nothing to send", None),
    ("status_remote_sftp", "status --remote (SFTP), in sync", None),
    ("fetch_sftp", "fetch over SFTP into an empty cache (no checkout)", "tar_down"),
    ("pull_sftp", "pull over SFTP into a fresh clone (fetch + checkout)", "tar_down"),
    ("push_s3", "push to S3", None),
    ("push_s3_noop", "push to S3 again, nothing to send", None),
    ("status_remote_s3", "status --remote (S3), in sync", None),
    ("fetch_s3", "fetch from S3 into an empty cache (no checkout)", None),
    ("pull_s3", "pull from S3 into a fresh clone (fetch + checkout)", None),
]

# --sftp-only: trove's SFTP steps once per transport (the remote sftp_TRANSPORT, so the
# steps are push_sftp_TRANSPORT, ...): transport, label.
SFTP_TRANSPORTS = [("openssh", "OpenSSH"), ("libssh2", "libssh2")]
# The SFTP steps: base key (TRANSPORT goes after "sftp"), label, reference of the large
# file (ssh cat), reference of the small files (tar over ssh); moves: the step carries the
# dataset's bytes (its CPU per GiB is shown).
SFTP_STEPS = [
    ("push_sftp", "push over SFTP", "ssh_cat_up", "tar_up", True),
    ("push_sftp_noop", "push over SFTP again, nothing to send", None, None, False),
    ("status_remote_sftp", "status --remote (SFTP), in sync", None, None, False),
    ("fetch_sftp", "fetch over SFTP into an empty cache (no checkout)", "ssh_cat_down", "tar_down", True),
    ("pull_sftp", "pull over SFTP into a fresh clone (fetch + checkout)", "ssh_cat_down", "tar_down", True),
]


def transport_step(base, transport):
    """push_sftp + openssh -> push_sftp_openssh; push_sftp_noop -> push_sftp_openssh_noop."""
    return base.replace("sftp", f"sftp_{transport}", 1)


STEPS += [
    (transport_step(base, t), f"{label} ({tlabel})", ref_large)
    for base, label, ref_large, _, _ in SFTP_STEPS
    for t, tlabel in SFTP_TRANSPORTS
]
STEP_LABEL = {k: label for k, label, _ in STEPS}
STEP_REF = {k: ref for k, _, ref in STEPS}

REFS = [
    ("cp", "`cp -r`"),
    ("cp_sync", "`cp -r` then `sync -f`"),
    ("cp_al", "`cp -al`"),
    ("walk", "walk: `find -printf '%s %T@'`"),
    ("scp_up", "`scp -r` to sshd"),
    ("scp_down", "`scp -r` from sshd"),
    ("tar_up", "`tar c` piped to `ssh … tar x` (to sshd)"),
    ("tar_down", "`ssh … tar c` piped to `tar x` (from sshd)"),
    ("ssh_cat_up", "ssh cat up: `ssh … 'cat > FILE' < file` (to sshd)"),
    ("ssh_cat_down", "ssh cat down: `ssh … 'cat FILE' > file` (from sshd)"),
]
REF_LABEL = dict(REFS)

NOOP_STEPS = ["push_folder_noop", "status_remote_folder", "push_sftp_noop", "status_remote_sftp",
              "push_s3_noop", "status_remote_s3"] + [
    transport_step(base, t) for base in ("push_sftp_noop", "status_remote_sftp")
    for t, _ in SFTP_TRANSPORTS]
S3_STEPS = [k for k, _, _ in STEPS if k.endswith("_s3") or "_s3_" in k]

# Targets of the issue: (datasets, step, kind, bound, text).
#   ref:  trove / reference <= bound     dvc: DVC / trove >= bound (> for "faster")
#   noread: the step opens no content file (strace), client and server side
#   onelist: in every run the step made exactly one S3 LIST, of the remote's index/ prefix
#     (counted in s3s-fs's log); the other requests are shown beside it
#   max: trove's median seconds <= bound
TARGETS = [
    (("small", "large"), "add", "ref", 1.2, "≤ 1.2× `cp -r`"),
    (("large",), "add", "dvc", 6, "≥ 6× faster than DVC"),
    (("small", "large"), "add_hl", "ref", 2, "≤ 2× `cp -al`"),
    (("small",), "status", "ref", 3, "≤ 3× walk"),
    (("small", "large"), "status", "dvc", 10, "≥ 10× faster than DVC"),
    (("small", "large"), "restore", "ref", 1.2, "≤ 1.2× `cp -r`"),
    (("small", "large"), "restore_hl", "ref", 2, "≤ 2× `cp -al`"),
    (("small", "large"), "push_folder", "ref", 1.3, "≤ 1.3× `cp -r`"),
    (("small", "large"), "pull_folder", "ref", 1.3, "≤ 1.3× `cp -r`"),
    (("small",), "push_sftp", "dvc", 10, "≥ 10× faster than DVC"),
    (("small",), "push_sftp", "ref", 1.2, "≤ 1.2× tar piped to ssh"),
    (("small",), "pull_sftp", "ref", 1.2, "≤ 1.2× ssh piped to tar"),
    (("small",), "pull_sftp", "dvc", 6, "≥ 6× faster than DVC"),
    (("large",), "push_sftp", "faster", 1, "faster than DVC"),
    (("large",), "pull_sftp", "faster", 1, "faster than DVC"),
    (("small",), "push_s3", "dvc", 10, "≥ 10× faster than DVC"),
    (("small",), "pull_s3", "dvc", 10, "≥ 10× faster than DVC"),
    (("large",), "push_s3", "dvc", 1.5, "≥ 1.5× faster than DVC"),
    (("large",), "pull_s3", "dvc", 1.5, "≥ 1.5× faster than DVC"),
    (("small",), "push_s3_noop", "onelist", 1, "one LIST, of the index/ prefix"),
] + [
    (("large",), transport_step(step, t), "ref", 1.3, "≤ 1.3× ssh cat")
    for step in ("push_sftp", "fetch_sftp") for t, _ in SFTP_TRANSPORTS
] + [
    (("small",), transport_step(step, t), "max", 0.1, "≤ 0.1 s")
    for step in ("push_sftp_noop", "status_remote_sftp") for t, _ in SFTP_TRANSPORTS
] + [
    (("small", "large"), s, "noread", 0, "opens no file content")
    for s in NOOP_STEPS
]

RSS_LIMIT_MIB = 200
LARGE_RSS_FLOOR_MIB = 64


def fmt_s(x):
    return "-" if x is None else f"{x:.3f}"


def fmt_x(x):
    if x is None:
        return "-"
    if x >= 10:
        return f"{x:.0f}×"
    return f"{x:.2f}×"


def short(n):
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def med(values):
    return statistics.median(values) if values else None


def load_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                meta[k] = v
    return meta


def load_tsv(path):
    # data[ds][tool][step] = list of run records
    data = {}
    if not os.path.exists(path):
        return data
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 10:
                continue
            ds, tool, step = parts[0].split("/")
            rec = {
                "run": int(parts[1]),
                "seconds": float(parts[2]),
                "user": float(parts[3]),
                "sys": float(parts[4]),
                "max_rss_kib": int(parts[5]),
                "rchar": int(parts[6]),
                "wchar": int(parts[7]),
                "read_bytes": int(parts[8]),
                "write_bytes": int(parts[9]),
            }
            data.setdefault(ds, {}).setdefault(tool, {}).setdefault(step, []).append(rec)
    return data


def summary(recs):
    if not recs:
        return None
    secs = [r["seconds"] for r in recs]
    return {
        "runs": len(recs),
        "median": med(secs),
        "min": min(secs),
        "max": max(secs),
        "median_user": med([r["user"] for r in recs]),
        "median_sys": med([r["sys"] for r in recs]),
        "max_rss_kib": max(r["max_rss_kib"] for r in recs),
        "median_rchar": med([r["rchar"] for r in recs]),
        "samples": recs,
    }


# The versions workload: (meta key, label, TSV tool, TSV step of the timed send).
VERSION_STORES = [
    ("trove_folder", "trove (folder)", "trove", "push_folder"),
    ("trove_sftp", "trove (SFTP)", "trove", "push_sftp"),
    ("restic", "restic", "restic", "backup"),
    ("dvc_folder", "DVC (folder)", "dvc", "push_folder"),
]
# Fields of trove's push report shown per version, when a push reports them.
PUSH_FIELDS = ["files", "bytes", "transferred"]
VERSIONS_PUSH_SHARE = 0.05
VERSIONS_DVC_SHARE = 0.3


def mib(n):
    return "-" if n is None else f"{n / 1048576:.1f}"


def versions_report(meta, data, p):
    """The versions workload's tables (through p) and its JSON document, or None."""
    n = int(meta.get("versions.count", "0"))
    if not n:
        return None
    recs = data.get("versions", {})

    def secs(tool, step, k):
        for r in recs.get(tool, {}).get(step, []):
            if r["run"] == k:
                return r["seconds"]
        return None

    def num(key):
        v = meta.get(key)
        if v is None:
            return None
        return float(v) if "." in v else int(v)

    stores = [st for st in VERSION_STORES if f"ver.1.{st[0]}.remote_bytes" in meta]
    per = []
    for k in range(1, n + 1):
        row = {"version": k, "rows": num(f"ver.{k}.rows"), "bytes": num(f"ver.{k}.bytes")}
        for key, _, tool, step in stores:
            d = {"seconds": secs(tool, step, k),
                 "remote_bytes": num(f"ver.{k}.{key}.remote_bytes"),
                 "remote_files": num(f"ver.{k}.{key}.remote_files")}
            if tool in ("trove", "dvc"):
                d["add_seconds"] = secs(tool, "add", k)
            if tool == "trove":
                prefix = f"ver.{k}.{key}.push."
                d["push"] = {f[len(prefix):]: num(f) for f in meta if f.startswith(prefix)}
                push = d["push"]
                # What the push sent over the wire (`transferred`); a trove that does
                # not report it sent whole objects (`bytes`).
                sent = push.get("transferred", push.get("bytes"))
                d["sent_bytes"] = sent
                d["sent_share"] = sent / row["bytes"] if (sent is not None and row["bytes"]) else None
            row[key] = d
        per.append(row)

    p("")
    p(f"### Versions: {n} versions of a table of about {meta.get('versions.mib', '?')} MiB")
    p("")
    p("Each version is the previous one with a few hundred rows inserted in the middle, a few "
      "runs of rows rewritten in place and 1 % appended, written to the same `table.csv`; "
      "after each, every tool sends it to its own store. Time: the push (trove, DVC) or "
      "`restic backup`; size: `du -sb` of the remote or repository after that version.")
    p("")
    head = "| version | table (MiB) |"
    rule = "|---:|---:|"
    for _, label, tool, _ in stores:
        verb = "backup" if tool == "restic" else "push"
        head += f" {label} {verb} (s) | {label} size (MiB) |"
        rule += "---:|---:|"
    p(head)
    p(rule)
    for row in per:
        cells = [str(row["version"]), mib(row["bytes"])]
        for key, *_ in stores:
            d = row[key]
            cells += [fmt_s(d["seconds"]), mib(d["remote_bytes"])]
        p("| " + " | ".join(cells) + " |")

    trove_stores = [st for st in stores if st[2] == "trove"]
    if trove_stores:
        fields = [f for f in PUSH_FIELDS
                  if any(f in row[key]["push"] for row in per for key, *_ in trove_stores)]
        others = sorted({f for row in per for key, *_ in trove_stores for f in row[key]["push"]}
                        - set(fields) - {"seconds", "already_there"})
        p("")
        p("trove's push reports (`trove --json push`): " + ", ".join(f"`{f}`" for f in fields) +
          "; the share of the table is `transferred` (bytes sent) where the push reports it, else `bytes`"
          + (f"; other fields (in the JSON): {', '.join(others)}" if others else "") + ".")
        p("")
        p("| version | remote | " + " | ".join(fields) + " | share of the table | remote files |")
        p("|---:|---|" + "---:|" * (len(fields) + 2))
        for row in per:
            for key, label, _, _ in trove_stores:
                d = row[key]
                vals = []
                for f in fields:
                    v = d["push"].get(f)
                    vals.append("-" if v is None else (f"{v}" if f == "files" else f"{mib(v)} MiB"))
                share = "-" if d["sent_share"] is None else f"{d['sent_share'] * 100:.1f} %"
                rf = "-" if d["remote_files"] is None else str(d["remote_files"])
                p(f"| {row['version']} | {label} | " + " | ".join(vals) + f" | {share} | {rf} |")

    # ---- summary and targets
    last = per[-1]

    def final(key):
        return last.get(key, {}).get("remote_bytes")

    summ = {"remote_bytes": {key: final(key) for key, *_ in stores},
            "table_bytes": last["bytes"]}
    p("")
    p(f"After {n} versions (the last table: {mib(last['bytes'])} MiB; all versions together: "
      f"{mib(sum(r['bytes'] or 0 for r in per))} MiB):")
    p("")
    p("| store | size (MiB) | ÷ last table | ÷ all versions |")
    p("|---|---:|---:|---:|")
    total = sum(r["bytes"] or 0 for r in per)
    for key, label, _, _ in stores:
        b = final(key)
        p(f"| {label} | {mib(b)} | {fmt_x(b / last['bytes']) if b and last['bytes'] else '-'} | "
          f"{fmt_x(b / total) if b and total else '-'} |")
    tf, rs, dv = final("trove_folder"), final("restic"), final("dvc_folder")
    summ["trove_over_restic"] = tf / rs if (tf and rs) else None
    summ["trove_over_dvc"] = tf / dv if (tf and dv) else None

    targets = []

    def target(text, measured, met):
        targets.append({"target": text, "measured": measured, "met": met})

    if tf is not None:
        if rs:
            target("trove's remote (folder) ≤ restic's repository after all versions",
                   f"{mib(tf)} MiB against {mib(rs)} MiB: {fmt_x(tf / rs)}", tf <= rs)
        else:
            target("trove's remote (folder) ≤ restic's repository after all versions",
                   "restic did not run", None)
        if dv:
            target(f"trove's remote (folder) ≤ {VERSIONS_DVC_SHARE} × DVC's remote after all versions",
                   f"{mib(tf)} MiB against {mib(dv)} MiB: {fmt_x(tf / dv)}",
                   tf <= VERSIONS_DVC_SHARE * dv)
        else:
            target(f"trove's remote (folder) ≤ {VERSIONS_DVC_SHARE} × DVC's remote after all versions",
                   "DVC did not run", None)
    for key, label, _, _ in trove_stores:
        news = per[1:]
        if not news:
            break
        shares = [r[key]["sent_share"] for r in news]
        if all(x is not None for x in shares):
            cells = ", ".join(f"v{r['version']} {x * 100:.1f} %" for r, x in zip(news, shares))
            target(f"each new version's push to {label} sends ≤ {VERSIONS_PUSH_SHARE * 100:.0f} % of the table",
                   cells, all(x <= VERSIONS_PUSH_SHARE for x in shares))
        summ[f"{key}_sent_share"] = {r["version"]: x for r, x in zip(news, shares)}
        if "restic" in [st[0] for st in stores]:
            pairs = [(r["version"], r[key]["seconds"], r["restic"]["seconds"]) for r in news]
            ok = all(t is not None and rt is not None for _, t, rt in pairs)
            cells = ", ".join(f"v{v} {fmt_s(t)} s / {fmt_s(rt)} s" for v, t, rt in pairs)
            target(f"each new version's push to {label} takes ≤ restic's backup of it",
                   cells, all(t <= rt for _, t, rt in pairs) if ok else None)
        else:
            target(f"each new version's push to {label} takes ≤ restic's backup of it",
                   "restic did not run", None)

    p("")
    p("| target | measured | met? |")
    p("|---|---|---|")
    for t in targets:
        word = "not measured" if t["met"] is None else ("yes" if t["met"] else "**no**")
        p(f"| {t['target']} | {t['measured']} | {word} |")
    return {"mib": num("versions.mib"), "count": n, "stores": [st[0] for st in stores],
            "per_version": per, "summary": summ, "targets": targets}


def report(args):
    opts = dict(zip(args[::2], args[1::2]))
    meta = load_meta(opts["--meta"])
    data = load_tsv(opts["--tsv"])
    out_json = opts["--json"]
    growth_slack = float(meta.get("growth_slack", "1.10"))

    datasets = meta.get("datasets", "").split()
    info = {}
    for ds in datasets:
        info[ds] = {
            "label": meta.get(f"ds.{ds}.label", ds),
            "files": int(meta.get(f"ds.{ds}.files", "0")),
            "bytes": int(meta.get(f"ds.{ds}.bytes", "0")),
            "runs": int(meta.get(f"ds.{ds}.runs", "0")),
        }

    def s(ds, tool, step):
        return summary(data.get(ds, {}).get(tool, {}).get(step, []))

    def m(ds, tool, step):
        x = s(ds, tool, step)
        return x["median"] if x else None

    def opens(ds, step):
        v = meta.get(f"opens.{ds}.{step}")
        if v is None:
            return None
        client, server = (v.split(",") + ["-"])[:2]
        return {"client": None if client == "-" else int(client),
                "server": None if server == "-" else int(server)}

    def s3req(ds, tool, step):
        """The requests of an S3 step per run: [(run, counts)], in run order."""
        head = f"s3req.{ds}.{tool}.{step}."
        runs = [(int(k[len(head):]), s3_parse(v)) for k, v in meta.items() if k.startswith(head)]
        return sorted(runs, key=lambda x: x[0])

    # ---- targets
    results = []
    for dss, step, kind, bound, text in TARGETS:
        for ds in dss:
            if ds not in info:
                continue
            t = m(ds, "trove", step)
            res = {"dataset": ds, "step": step, "target": text, "kind": kind, "bound": bound,
                   "trove": t, "met": None, "measured": None}
            if kind == "ref":
                ref = STEP_REF[step]
                r = m(ds, "ref", ref)
                res["reference"] = ref
                res["reference_seconds"] = r
                if t is not None and r:
                    res["measured"] = t / r
                    res["met"] = t / r <= bound
                    res["text"] = f"{fmt_x(t / r)} {REF_LABEL[ref].split(':')[0]}"
            elif kind in ("dvc", "faster"):
                d = m(ds, "dvc", step)
                res["dvc"] = d
                if t and d is not None:
                    res["measured"] = d / t
                    res["met"] = d / t >= bound if kind == "dvc" else d / t > bound
                    res["text"] = f"DVC / trove {fmt_x(d / t)}"
            elif kind == "noread":
                o = opens(ds, step)
                res["opens"] = o
                if o is not None and o["client"] is not None:
                    n = o["client"] + (o["server"] or 0)
                    res["measured"] = n
                    res["met"] = n == 0
                    side = "" if o["server"] is None else f" + {o['server']} on the server"
                    res["text"] = f"{o['client']} content files opened{side}"
            elif kind == "max":
                res["measured"] = t
                if t is not None:
                    res["met"] = t <= bound
                    res["text"] = f"{fmt_s(t)} s"
            elif kind == "onelist":
                runs = s3req(ds, "trove", step)
                res["requests"] = {r: c for r, c in runs}
                if runs:
                    def one_index_list(c):
                        return c["list"] == 1 and all(p.rstrip("/").endswith("index")
                                                      for p in c["lists"])
                    res["met"] = all(one_index_list(c) for _, c in runs)
                    res["measured"] = max(c["list"] for _, c in runs)
                    texts = sorted({s3_text(c) for _, c in runs})
                    res["text"] = "; ".join(texts) + (f" (in each of {len(runs)} runs)" if len(runs) > 1 and len(texts) == 1 else "")
            # Steps that did not run (--no-remote, no DVC, ...) have no verdict.
            if res["trove"] is None or (kind in ("dvc", "faster") and res.get("dvc") is None):
                continue
            results.append(res)

    def verdicts(ds, step):
        cells = []
        for r in results:
            if r["dataset"] == ds and r["step"] == step:
                if r["met"] is None:
                    cells.append(f"{r['target']}: not measured")
                else:
                    word = "yes" if r["met"] else "**no**"
                    cells.append(f"{word} ({r.get('text', '')})")
        return "; ".join(cells)

    def targets_text(ds, step):
        return "; ".join(r["target"] for r in results if r["dataset"] == ds and r["step"] == step)

    have_dvc = meta.get("dvc", "") != ""
    lines = []
    p = lines.append
    p("## trove benchmark")
    p("")
    p(f"- machine: {meta.get('machine', '?')}")
    p(f"- file system of the benchmark folder: {meta.get('fs', '?')}")
    p(f"- trove: {meta.get('trove', '?')}")
    p(f"- dvc: {meta.get('dvc') or 'not on PATH, not compared'}")
    if meta.get("restic"):
        p(f"- restic (versions workload): {meta['restic']}")
    if meta.get("sftp"):
        p(f"- SFTP remote: {meta['sftp']}")
    if meta.get("s3"):
        p(f"- S3 remote: {meta['s3']}")
    p(f"- load average before / after the run: {meta.get('load_before', '?')} / {meta.get('load_after', '?')}")
    p(f"- started {meta.get('started', '?')}, finished {meta.get('finished', '?')}")
    if datasets:
        runs_note = ", ".join(f"{info[ds]['label']}: {info[ds]['runs']}" for ds in datasets)
        p(f"- runs per step (trove, references and DVC alternating): {runs_note}")
        p("- figures: median wall-clock seconds over the runs (min and max are in the JSON); "
          "warm page cache; each step after a `sync`")
    if meta.get("versions.count"):
        p(f"- versions workload: {meta['versions.count']} versions, one run each; "
          f"remotes: {meta.get('versions.remotes', '?')}")
    for k, v in sorted(meta.items()):
        if k.startswith("note."):
            p(f"- {v}")

    json_ds = {}
    for ds in datasets:
        tools = data.get(ds, {})
        json_ds[ds] = dict(info[ds])
        json_ds[ds]["steps"] = {}
        for tool, steps in tools.items():
            for step, recs in steps.items():
                json_ds[ds]["steps"].setdefault(step, {})[tool] = summary(recs)
        for step in NOOP_STEPS:
            o = opens(ds, step)
            if o is not None and step in json_ds[ds]["steps"]:
                json_ds[ds]["steps"][step]["content_files_opened"] = o

    main = [ds for ds in ("large", "small") if ds in info]
    sftp_only = meta.get("sftp_only") == "1"
    # --sftp-only: the transport tables below say it all (the general table would show
    # DVC's SFTP rows without trove's).
    for ds in ([] if sftp_only else main):
        p("")
        p(f"### {info[ds]['label']}")
        p("")
        p("| step | trove (s) | DVC (s) | DVC / trove | reference (s) | target | met? |")
        p("|---|---:|---:|---:|---|---|---|")
        for step, label, ref in STEPS:
            t = m(ds, "trove", step)
            d = m(ds, "dvc", step)
            if t is None and d is None:
                continue
            ratio = d / t if (t and d is not None) else None
            refcell = ""
            r = m(ds, "ref", ref) if ref else None
            if r is not None:
                name = REF_LABEL[ref].split(":")[0]
                rel = f", trove {fmt_x(t / r)}" if (t is not None and r > 0) else ""
                refcell = f"{name} {fmt_s(r)}{rel}"
            p(f"| {label} | {fmt_s(t)} | {fmt_s(d) if have_dvc else ''} | "
              f"{fmt_x(ratio) if have_dvc else ''} | {refcell} | {targets_text(ds, step)} | "
              f"{verdicts(ds, step)} |")
        p("")
        p("CPU seconds (user + system, medians) of the same steps:")
        p("")
        p("| step | trove user | trove sys | DVC user | DVC sys |")
        p("|---|---:|---:|---:|---:|")
        for step, label, _ in STEPS:
            t = s(ds, "trove", step)
            d = s(ds, "dvc", step)
            if not t and not d:
                continue
            tc = f"{t['median_user']:.2f} | {t['median_sys']:.2f}" if t else "- | -"
            dc = f"{d['median_user']:.2f} | {d['median_sys']:.2f}" if d else "- | -"
            p(f"| {label} | {tc} | {dc} |")
        if any(s(ds, "ref", ref) for ref, _ in REFS):
            p("")
            p("| reference | median (s) | min (s) | max (s) |")
            p("|---|---:|---:|---:|")
            for ref, label in REFS:
                x = s(ds, "ref", ref)
                if x:
                    p(f"| {label} | {fmt_s(x['median'])} | {fmt_s(x['min'])} | {fmt_s(x['max'])} |")

    # ---- SFTP transports (--sftp-only)
    def cpu(ds, tool, step):
        """Median over the runs of user + system CPU seconds (the process and the children
        it waited for: trove's ssh, the references' ssh)."""
        recs = data.get(ds, {}).get(tool, {}).get(step, [])
        return med([r["user"] + r["sys"] for r in recs])

    def per_gib(x, ds):
        gib = info[ds]["bytes"] / 2**30
        return None if x is None or not gib else x / gib

    sftp_json = {}
    for ds in main:
        if not any(s(ds, "trove", transport_step(base, t))
                   for base, *_ in SFTP_STEPS for t, _ in SFTP_TRANSPORTS):
            continue
        large = ds == "large"
        rows = []
        for base, label, ref_large, ref_small, moves in SFTP_STEPS:
            ref = ref_large if large else ref_small
            r = m(ds, "ref", ref) if ref else None
            d = m(ds, "dvc", base)
            for t, tlabel in SFTP_TRANSPORTS:
                step = transport_step(base, t)
                tm = m(ds, "trove", step)
                if tm is None:
                    continue
                c = cpu(ds, "trove", step)
                rows.append({
                    "step": step, "base_step": base, "transport": t, "label": f"{label} ({tlabel})",
                    "seconds": tm, "reference": ref, "reference_seconds": r,
                    "ratio_to_reference": tm / r if (r and tm is not None) else None,
                    "dvc_seconds": d, "dvc_ratio": d / tm if (tm and d is not None) else None,
                    "cpu_seconds": c, "cpu_per_gib": per_gib(c, ds) if moves else None,
                    "dvc_cpu_per_gib": per_gib(cpu(ds, "dvc", base), ds) if moves else None,
                })
        refs = {}
        for ref in (("ssh_cat_up", "ssh_cat_down") if large else ("tar_up", "tar_down")):
            x = m(ds, "ref", ref)
            if x is not None:
                c = cpu(ds, "ref", ref)
                refs[ref] = {"seconds": x, "cpu_seconds": c, "cpu_per_gib": per_gib(c, ds)}
        sftp_json[ds] = {"rows": rows, "references": refs}
        p("")
        p(f"### SFTP transports: {info[ds]['label']}")
        p("")
        p("trove with `transport openssh` (the user's `ssh -s HOST sftp`) and `transport libssh2` "
          "(built in), each in its own repository and remote folder; reference: "
          + ("`ssh … 'cat > FILE' < file` up and `ssh … 'cat FILE' > file` down"
             if large else "`tar c` piped to `ssh … tar x` up, `ssh … tar c` piped to `tar x` down")
          + ", with the same cipher (`-c aes128-gcm@openssh.com`)."
          + (" CPU: user + system seconds of the client side (trove and its ssh, or ssh and "
             "the shell around it), medians, per GiB moved." if large else
             " CPU: user + system seconds of the client side, medians."))
        p("")
        cpu_head = "CPU (s/GiB) | DVC CPU (s/GiB)" if large else "CPU (s) | DVC CPU (s)"
        p(f"| step | trove (s) | reference (s) | trove / reference | DVC (s) | DVC / trove | "
          f"{cpu_head} | target | met? |")
        p("|---|---:|---|---:|---:|---:|---:|---:|---|---|")
        for row in rows:
            ref = row["reference"]
            refcell = "" if row["reference_seconds"] is None else \
                f"{REF_LABEL[ref].split(':')[0]} {fmt_s(row['reference_seconds'])}"
            if large:
                c1, c2 = row["cpu_per_gib"], row["dvc_cpu_per_gib"]
            else:
                c1 = row["cpu_seconds"]
                dc = cpu(ds, "dvc", row["base_step"])
                c2 = dc
            p(f"| {row['label']} | {fmt_s(row['seconds'])} | {refcell} | "
              f"{fmt_x(row['ratio_to_reference'])} | "
              f"{fmt_s(row['dvc_seconds']) if have_dvc else ''} | "
              f"{fmt_x(row['dvc_ratio']) if have_dvc else ''} | "
              f"{'-' if c1 is None else f'{c1:.2f}'} | "
              f"{'-' if (c2 is None or not have_dvc) else f'{c2:.2f}'} | "
              f"{targets_text(ds, row['step'])} | {verdicts(ds, row['step'])} |")
        for ref, x in refs.items():
            c = x["cpu_per_gib"] if large else x["cpu_seconds"]
            p(f"| reference: {REF_LABEL[ref]} | {fmt_s(x['seconds'])} | | | | | "
              f"{'-' if c is None else f'{c:.2f}'} | | | |")

    # ---- S3: requests per step
    s3_json = {}
    s3_rows = []
    for ds in datasets:
        for step in S3_STEPS:
            per_tool = {tool: s3req(ds, tool, step) for tool in ("trove", "dvc")}
            if any(per_tool.values()):
                s3_rows.append((ds, step, per_tool))
                s3_json.setdefault(ds, {})[step] = {
                    tool: {str(r): c for r, c in runs} for tool, runs in per_tool.items() if runs}
    if s3_rows:
        def cell(runs):
            if not runs:
                return "-"
            texts = sorted({s3_text(c) for _, c in runs}, key=lambda t: int(t.split()[0]))
            if len(texts) == 1:
                return texts[0]
            return " / ".join(f"run {r}: {s3_text(c)}" for r, c in runs)
        p("")
        p("### S3 requests per step")
        p("")
        p("Counted in s3s-fs's log (`RUST_LOG=s3s::service=debug`: one `req:` line per request), "
          "per step and run; LIST is a GET of the bucket with `list-type=2` (ListObjectsV2), "
          "with the prefixes it listed. Where runs differ, each run is shown.")
        p("")
        p("| dataset | step | trove | DVC |")
        p("|---|---|---|---|")
        for ds, step, per_tool in s3_rows:
            p(f"| {info[ds]['label']} | {STEP_LABEL[step]} | {cell(per_tool['trove'])} | "
              f"{cell(per_tool['dvc']) if have_dvc else ''} |")
        for ds, step, per_tool in s3_rows:
            if step == "push_s3_noop" and per_tool["trove"]:
                runs = per_tool["trove"]
                totals = sorted({c["total"] for _, c in runs})
                lists = sorted({c["list"] for _, c in runs})
                p("")
                p(f"trove's no-op push to S3 at {info[ds]['label']}: "
                  f"{'–'.join(map(str, totals))} requests, of which "
                  f"{'–'.join(map(str, lists))} LIST ({len(runs)} run{'s' if len(runs) > 1 else ''}).")

    # ---- no-op steps: what they read
    noop_rows = []
    for ds in datasets:
        for step in NOOP_STEPS:
            x = s(ds, "trove", step)
            if not x:
                continue
            o = opens(ds, step)
            noop_rows.append((ds, step, x, o))
    if noop_rows:
        p("")
        p("### No-op push and status --remote: what they touch")
        p("")
        p("Content files opened: `open`/`openat` of a cache or remote object (not a manifest) "
          "or of a workspace data file, counted with `strace -f` on trove and, for SFTP, on the "
          "benchmark's sshd (one extra, untimed run). Read: bytes passed through `read()` by "
          "trove (rchar; SFTP traffic goes through `recv()` and is not counted).")
        p("")
        p("| dataset | step | trove (s) | content files opened | read (KiB) | data (MiB) |")
        p("|---|---|---:|---:|---:|---:|")
        for ds, step, x, o in noop_rows:
            if o is None:
                oc = "not checked"
            else:
                oc = str(o["client"]) if o["client"] is not None else "-"
                if o["server"] is not None:
                    oc += f" + {o['server']} (sshd)"
            rchar = x["median_rchar"]
            p(f"| {info[ds]['label']} | {STEP_LABEL[step]} | {fmt_s(x['median'])} | {oc} | "
              f"{rchar / 1024:.0f} | {info[ds]['bytes'] / 1048576:.1f} |")

    # ---- memory
    rss_ds = [ds for ds in datasets if "trove" in data.get(ds, {})]
    rss_order = sorted(rss_ds, key=lambda d: (d != "large", info[d]["files"]))
    if rss_ds:
        p("")
        p("### Peak memory of trove (RSS, MiB, largest over the runs)")
        p("")
        p("| step | " + " | ".join(info[d]["label"] for d in rss_order) + " |")
        p("|---|" + "---:|" * len(rss_order))
        for step, label, _ in STEPS:
            row = []
            for d in rss_order:
                x = s(d, "trove", step)
                row.append(f"{x['max_rss_kib'] / 1024:.0f}" if x else "-")
            if any(c != "-" for c in row):
                p(f"| {label} | " + " | ".join(row) + " |")
    peak = {}
    for d in rss_ds:
        vals = [(r["max_rss_kib"], st) for st, recs in data[d]["trove"].items() for r in recs]
        kib, st = max(vals)
        peak[d] = {"max_rss_kib": kib, "step": st}
    big = max((d for d in rss_ds if d != "large"), key=lambda d: info[d]["files"], default=None)
    mem = {"peak_by_dataset": peak, "limit_mib": RSS_LIMIT_MIB}
    if big is not None:
        mib = peak[big]["max_rss_kib"] / 1024
        mem["largest_file_count"] = {"dataset": big, "files": info[big]["files"], "peak_mib": mib,
                                     "met": mib <= RSS_LIMIT_MIB if info[big]["files"] >= 80000 else None}
    if "large" in peak:
        # "Does not grow with file sizes": the large file may cost no more memory than the
        # small-file datasets do (or 64 MiB, whichever is more); a step that holds or maps
        # the whole file blows through that.
        others = [peak[d]["max_rss_kib"] / 1024 for d in rss_ds if d != "large"]
        bound = max([LARGE_RSS_FLOOR_MIB] + others)
        lp = peak["large"]["max_rss_kib"] / 1024
        mem["large_file"] = {"peak_mib": lp, "step": peak["large"]["step"], "bound_mib": bound,
                             "file_mib": info["large"]["bytes"] / 1048576, "met": lp <= bound}

    # ---- growth
    gds = sorted([d for d in datasets if d != "large" and "trove" in data.get(d, {})],
                 key=lambda d: info[d]["files"])
    growth = {}
    if len(gds) >= 2:
        lo, hi = gds[0], gds[-1]
        p("")
        p("### Growth: time per file (µs) of trove")
        p("")
        p(f"A step meets the growth target when its time per file at {info[hi]['files']:,} files "
          f"is at most {growth_slack:.2f}× that at {info[lo]['files']:,} files "
          f"(no-op steps: below 1×, i.e. sub-linear); medians.")
        p("")
        p("| step | " + " | ".join(f"{info[d]['files']:,} files" for d in gds) +
          f" | {short(info[hi]['files'])} ÷ {short(info[lo]['files'])} | met? |")
        p("|---|" + "---:|" * len(gds) + "---:|---|")
        rows = [(k, label, "trove") for k, label, _ in STEPS] + \
               [(k, f"reference: {label}", "ref") for k, label in REFS if k in ("cp", "cp_al", "walk")]
        for step, label, tool in rows:
            per = []
            for d in gds:
                x = m(d, tool, step)
                per.append(None if x is None else x / info[d]["files"] * 1e6)
            if all(v is None for v in per):
                continue
            ratio = per[-1] / per[0] if (per[0] and per[-1] is not None) else None
            met = None
            if ratio is not None and tool == "trove":
                met = ratio < 1.0 if step in NOOP_STEPS else ratio <= growth_slack
            growth[f"{tool}/{step}"] = {"us_per_file": dict(zip(gds, per)), "ratio": ratio, "met": met}
            cells = " | ".join("-" if v is None else f"{v:.1f}" for v in per)
            mcell = "" if met is None else ("yes" if met else "**no**")
            p(f"| {label} | {cells} | {fmt_x(ratio)} | {mcell} |")

    # ---- summary of targets
    if datasets:
        p("")
        p("### Targets")
        p("")
        p("| dataset | step | target | measured | met? |")
        p("|---|---|---|---|---|")
    order = {"small": 0, "large": 1}
    for r in sorted(results, key=lambda r: order.get(r["dataset"], 2)):
        word = "not measured" if r["met"] is None else ("yes" if r["met"] else "**no**")
        p(f"| {info[r['dataset']]['label']} | {STEP_LABEL[r['step']]} | {r['target']} | "
          f"{r.get('text', '-')} | {word} |")
    if big is not None:
        lc = mem["largest_file_count"]
        word = "not measured (needs 80,000 files)" if lc["met"] is None else ("yes" if lc["met"] else "**no**")
        p(f"| {info[big]['label']} | every step | peak RSS ≤ {RSS_LIMIT_MIB} MiB | "
          f"{lc['peak_mib']:.0f} MiB ({STEP_LABEL.get(peak[big]['step'], peak[big]['step'])}) | {word} |")
    if "large" in peak:
        lf = mem["large_file"]
        p(f"| {info['large']['label']} | every step | peak RSS does not grow with file size: "
          f"≤ {lf['bound_mib']:.0f} MiB (the small-file datasets' peak, at least "
          f"{LARGE_RSS_FLOOR_MIB} MiB) | {lf['peak_mib']:.0f} MiB "
          f"({STEP_LABEL.get(lf['step'], lf['step'])}) | {'yes' if lf['met'] else '**no**'} |")
    if growth:
        bad = [k.split("/")[1] for k, v in growth.items() if v["met"] is False]
        p(f"| growth {info[gds[0]]['files']:,} → {info[gds[-1]]['files']:,} | per-file time | "
          f"does not rise | {len(bad)} of {sum(1 for v in growth.values() if v['met'] is not None)} "
          f"steps rise{': ' + ', '.join(bad) if bad else ''} | {'yes' if not bad else '**no**'} |")

    versions = versions_report(meta, data, p)

    print("\n".join(lines))

    doc = {
        "s3_requests": s3_json,
        "sftp_transports": sftp_json,
        "versions": versions,
        "meta": meta,
        "datasets": json_ds,
        "targets": results,
        "memory": mem,
        "growth": growth,
        "growth_slack": growth_slack,
    }
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen":
        gen(args[0], args[1], int(args[2]))
        return 0
    if cmd == "table":
        rows, size = table(args[0], int(args[1]), int(args[2]), args[3] if len(args) > 3 else None)
        print(rows, size)
        return 0
    if cmd == "transfer-meta":
        return transfer_meta(args)
    if cmd == "run":
        return run(args)
    if cmd == "s3-requests":
        return s3_requests(args)
    if cmd == "s3-clear":
        return s3_clear(args[0], args[1], args[2])
    if cmd == "s3-dir-head":
        return s3_dir_head(args[0], args[1], args[2])
    if cmd == "report":
        return report(args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
