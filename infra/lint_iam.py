#!/usr/bin/env python3
"""Lints every IAM role policy the declaration generates with parliament (offline: it carries
the Service Authorization Reference as data), as `make test-infra` runs it:

    .venv-tools/bin/python infra/lint_iam.py target/iam-policies [--allowlist infra/iam-allowlist.json]

The documents come from tests/infra.rs (`the_generated_role_policies_are_written_for_the_iam_linter`),
which evaluates the Terraform the way Terraform would and writes each function's and each
state machine's policy as IAM would receive it. Every finding of every severity counts: an
unknown action, an action on a resource type it does not support (RESOURCE_MISMATCH, e.g.
states:SendTaskSuccess on a state machine ARN, which IAM never matches), a wildcard resource
for an action that supports ARNs (RESOURCE_STAR), an unknown condition key, an invalid ARN;
parliament's community auditors (privilege escalation, permissions management) run too.

An allowlist entry needs a reason; its other fields (file, issue, action, resource: fnmatch
globs, a list of them for action and resource) narrow what it matches; every resource of the
statement must match one of the entry's, and an entry that matches nothing fails the lint, so the list
cannot outlive what it excuses. Exit 0 only with no finding outside it.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=DeprecationWarning)  # parliament imports pkg_resources
warnings.filterwarnings("ignore", category=UserWarning)

import parliament  # noqa: E402
from parliament import analyze_policy_string, enhance_finding  # noqa: E402

ENTRY_KEYS = {"file", "issue", "action", "resource", "reason"}


def load_allowlist(path: Path | None) -> list[dict]:
    if path is None:
        return []
    entries = json.loads(path.read_text(encoding="utf-8"))
    for i, entry in enumerate(entries):
        if set(entry) - ENTRY_KEYS or not str(entry.get("reason", "")).strip():
            raise SystemExit(f"{path}: entry {i} needs a reason and only {sorted(ENTRY_KEYS)}")
        for key in ("action", "resource"):
            if isinstance(entry.get(key), str):
                entry[key] = [entry[key]]
        entry["used"] = 0
    return entries


def findings_of(path: Path) -> list[dict]:
    """Each finding as {issue, severity, action, resources, text}, one per action it names."""
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)  # strict; parliament's own parser accepts trailing commas
    except ValueError as e:
        return [{"issue": "MALFORMED_JSON", "severity": "CRITICAL", "action": None, "resources": None, "text": str(e)}]
    statements = doc.get("Statement", [])
    policy = analyze_policy_string(text, str(path), ignore_private_auditors=True, include_community_auditors=True)
    # `policy.findings` holds the policy's own findings and its statements'; a statement's
    # are matched back to the statement (by identity) for its resources.
    statement_of = {id(f): i for i, st in enumerate(policy.statements) for f in st.findings}
    pairs = []
    for f in policy.findings:
        i = statement_of.get(id(f))
        pairs.append((f, statements[i] if i is not None and i < len(statements) else None))
    rows = []
    for finding, statement in pairs:
        finding = enhance_finding(finding)
        resources = None
        if statement is not None:
            r = statement.get("Resource", [])
            resources = r if isinstance(r, list) else [r]
        location = finding.location if isinstance(finding.location, dict) else {}
        detail = finding.detail
        if finding.issue == "RESOURCE_MISMATCH" and isinstance(detail, list):
            actions = [(d["action"], f"needs a resource like {d['required_format']}") for d in detail]
        elif finding.issue == "RESOURCE_STAR" and isinstance(detail, list):
            actions = [(a, 'Resource "*" for an action that supports ARNs') for a in detail]
        elif finding.issue in ("UNKNOWN_ACTION", "UNKNOWN_PREFIX") and "string" in location:
            actions = [(location["string"], str(detail))]
        elif isinstance(location.get("actions"), list):
            actions = [(a, str(detail or finding.title)) for a in location["actions"]]
        else:
            actions = [(None, str(detail or finding.title))]
        rows += [{"issue": finding.issue, "severity": finding.severity, "action": a,
                  "resources": resources, "text": t} for a, t in actions]
    return rows


def excused(path: Path, row: dict, entries: list[dict]) -> dict | None:
    for entry in entries:
        if "file" in entry and not fnmatch.fnmatchcase(path.name, entry["file"]):
            continue
        if "issue" in entry and entry["issue"] != row["issue"]:
            continue
        if "action" in entry and not (row["action"] and any(fnmatch.fnmatchcase(row["action"], a) for a in entry["action"])):
            continue
        if "resource" in entry and not (row["resources"] and all(
                any(r == g or fnmatch.fnmatchcase(r, g) for g in entry["resource"]) for r in row["resources"])):
            continue
        entry["used"] += 1
        return entry
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--allowlist", type=Path)
    args = parser.parse_args(argv)
    # The community auditors' issue codes are unknown to enhance_finding without their config.
    parliament.override_config(str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"))
    entries = load_allowlist(args.allowlist)
    files = sorted(args.directory.glob("*.json"))
    if not files:
        print(f"lint_iam: no policy documents in {args.directory}: nothing was linted", file=sys.stderr)
        return 1
    found = allowed = 0
    for path in files:
        for row in findings_of(path):
            what = f" {row['action']}" if row["action"] else ""
            on = f" on {json.dumps(row['resources'])}" if row["resources"] else ""
            entry = excused(path, row, entries)
            if entry:
                allowed += 1
                print(f"lint_iam: {path.name}: allowlisted {row['issue']}{what}{on} ({entry['reason']})")
            else:
                found += 1
                print(f"lint_iam: {path.name}: {row['severity']} {row['issue']}{what}{on}: {row['text']}")
    stale = [e for e in entries if not e["used"]]
    for entry in stale:
        shown = {k: v for k, v in entry.items() if k != "used"}
        print(f"lint_iam: {args.allowlist}: an entry matched nothing (remove it): {json.dumps(shown)}")
    print(f"lint_iam: parliament {parliament.__version__}: {len(files)} role policies, {found} findings"
          + (f" ({allowed} allowlisted)" if allowed else ""))
    return 1 if found or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
