"""SMB sync benchmark: files/s of a first sync and of a permission-only re-sync of an SMB share,
against the same tree synced from a local directory in the same run.

    .venv/bin/python -m bench.smb [--files 1200] [--dirs 12] [--no-encrypt]

Needs root and the Samba packages (as the tests do): it starts the test domain controller of
``tests/smb/dc.py`` on 127.0.0.2, writes ``--files`` small text files (one chunk each) under
``bench/`` on its share as the domain Administrator, with an ACL on the top folder that every
file inherits, and writes the same files into a local directory. Then, with one embedding model
loaded once for all runs (model loading is not timed) and one parser worker:

- SMB first sync (``run_sync`` on ``smb://127.0.0.2/docs/bench`` as the service account, SMB3
  encryption on unless ``--no-encrypt``, readers from the NT ACLs, groups from LDAP);
- the ACL of the top folder changes (hr replaced by engineering) and is propagated to every file
  the way Explorer does it (timed separately: that is the admin's edit, not Enclave's work);
- SMB permission-only re-sync, and an unchanged re-sync;
- local first sync of the same files (readers from an access-rules file), then a permission-
  only re-sync after the rules file changes the group of every file, and an unchanged re-sync.

Prints one JSON object; ratios are SMB / local, measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WORDS = [
    "budget",
    "review",
    "onboarding",
    "laptop",
    "travel",
    "expense",
    "policy",
    "vendor",
    "contract",
    "security",
    "badge",
    "meeting",
    "schedule",
    "holiday",
    "training",
    "course",
    "invoice",
    "deadline",
    "project",
    "milestone",
    "report",
]


def text_for(i: int) -> bytes:
    w = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(24)]
    return (f"Memo {i}: " + " ".join(w) + f". Reference number {i * 7919 % 100000}.\n").encode()


def timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def summary_of(s: Any, seconds: float, files: int) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 2),
        "files_per_s": round(files / seconds, 1),
        "added": s.added,
        "permissions_updated": s.permissions_updated,
        "unchanged": s.unchanged,
        "embedded": s.embedded,
        "failed": s.failed_count,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=1200)
    ap.add_argument("--dirs", type=int, default=12)
    ap.add_argument("--no-encrypt", action="store_true", help="SMB signing only, no encryption")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from core.settings import EmbeddingSettings, Settings
    from ingest.encoding.embed import load_embedder
    from ingest.sync.run import run_sync
    from policies import ntacl as N
    from tests.smb import dc as dcmod
    from tests.smb.conftest import build_tree
    from tests.smb.smbadmin import Admin

    problem = "needs root" if os.geteuid() != 0 else None
    if problem is None and dcmod.missing_tools():
        problem = f"missing {dcmod.missing_tools()}: apt-get install {dcmod.SAMBA_PACKAGES}"
    if problem:
        print(json.dumps({"error": problem}))
        return 2

    work = Path(tempfile.mkdtemp(prefix="enclave-bench-smb-"))
    template = Path(os.environ.get("ENCLAVE_DC_TEMPLATE", "/tmp/enclave-dc-template"))
    dc = dcmod.DC(Path(f"/tmp/enclave-dc-bench-{os.getpid()}"))
    result: dict[str, Any] = {
        "files": args.files,
        "dirs": args.dirs,
        "encrypt": not args.no_encrypt,
    }
    try:
        _, result["dc_start_s"] = timed(lambda: (dcmod.provision(dc, template), dcmod.start(dc)))
        sids = dcmod.populate_directory(dc)
        admin = Admin(dc)
        try:
            build_tree(admin, sids)
            paths = [f"bench/d{i % args.dirs:02d}/f{i:05d}.txt" for i in range(args.files)]
            local = work / "local"
            admin.mkdir("bench")
            admin.set_acl(
                "bench", [N.allow(sids["hr"], N.READ_AND_EXECUTE, N.OICI)], directory=True
            )
            for d in range(args.dirs):
                admin.mkdir(f"bench/d{d:02d}")
                (local / f"d{d:02d}").mkdir(parents=True)
            t0 = time.perf_counter()
            for i, p in enumerate(paths):
                admin.write(p, text_for(i))
                (local / p.removeprefix("bench/")).write_bytes(text_for(i))
            result["create_s"] = round(time.perf_counter() - t0, 2)

            pw = work / "svc.pw"
            pw.write_text(dcmod.USER_PASSWORD)
            rules = work / "access.yaml"
            rules.write_text('rules:\n  - path: "**"\n    groups: [hr]\n')
            common = {"ingest": {"workers": 1}}
            smb_settings = Settings(
                data_dir=work / "smb",
                smb={
                    "username": dc.account("svc-enclave"),
                    "password_file": pw,
                    "encrypt": not args.no_encrypt,
                },
                ldap={
                    "url": f"ldaps://{dc.ip}",
                    "bind_user": f"svc-enclave@{dcmod.REALM.lower()}",
                    "bind_password_file": pw,
                    "ca_file": dc.ca_file,
                },
                **common,  # type: ignore[arg-type]
            )
            local_settings = Settings(data_dir=work / "local-data", access_rules=rules, **common)  # type: ignore[arg-type]
            embedder = load_embedder(EmbeddingSettings())
            embedder.embed_documents(["warm up"])
            url = f"{dc.url}/bench"
            n = args.files

            def sync(settings: Settings, root: str | Path, name: str) -> Any:
                return timed(lambda: run_sync(settings, root, name, workers=1, embedder=embedder))

            smb: dict[str, Any] = {}
            s, t = sync(smb_settings, url, "smb")
            smb["first_sync"] = summary_of(s, t, n)
            # the admin's edit: hr -> engineering on the top folder, flowed down like Explorer
            sd = admin.sd("bench", directory=True)
            aces = [a for a in sd.dacl or () if a.sid != sids["hr"]]
            aces.insert(0, N.allow(sids["engineering"], N.READ_AND_EXECUTE, N.OICI))
            t0 = time.perf_counter()
            admin.set_sd("bench", N.build_sd(None, None, aces))
            propagated = admin.propagate("bench")
            smb["acl_propagation"] = {
                "objects": propagated,
                "seconds": round(time.perf_counter() - t0, 2),
            }
            s, t = sync(smb_settings, url, "smb")
            smb["permission_resync"] = summary_of(s, t, n)
            s, t = sync(smb_settings, url, "smb")
            smb["unchanged_resync"] = summary_of(s, t, n)

            loc: dict[str, Any] = {}
            s, t = sync(local_settings, local, "local")
            loc["first_sync"] = summary_of(s, t, n)
            rules.write_text('rules:\n  - path: "**"\n    groups: [engineering]\n')
            s, t = sync(local_settings, local, "local")
            loc["permission_resync"] = summary_of(s, t, n)
            s, t = sync(local_settings, local, "local")
            loc["unchanged_resync"] = summary_of(s, t, n)
        finally:
            admin.close()
        result["smb"], result["local"] = smb, loc
        result["ratio_smb_over_local"] = {
            k: round(smb[k]["files_per_s"] / loc[k]["files_per_s"], 3)
            for k in ("first_sync", "permission_resync", "unchanged_resync")
        }
        ok = (
            smb["permission_resync"]["permissions_updated"] == n
            and smb["permission_resync"]["embedded"] == 0
            and loc["permission_resync"]["permissions_updated"] == n
            and smb["first_sync"]["added"] == n == loc["first_sync"]["added"]
        )
        result["checks_passed"] = ok
    finally:
        dcmod.stop(dc)
        shutil.rmtree(dc.base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0 if result.get("checks_passed") else 1


if __name__ == "__main__":
    sys.exit(main())
