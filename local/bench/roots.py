#!/usr/bin/env python3
"""What the TLS root store costs a function's init (the largest share of it, measured).

    .venv/bin/python local/bench/roots.py [FUNCTION] [--rounds 15]     # after make bench

The SDK's default HTTPS client trusts the system's roots (rustls-native-certs), which it
loads while the function builds its clients, before the first GET /next: the bundle, and
then every file of the certificate directory. shared::aws::http_client trusts only the roots
AWS endpoints chain to (Amazon Root CA 1-4, Starfield Services G2), built into the binary,
unless COMMERCE_TLS_ROOTS=system. This runs one release function (default users-get, in the one deployed binary)
against hello world, alternately, with the built-in roots, with the system's (bundle and
directory), and with the system bundle alone (SSL_CERT_FILE, no directory), and prints the
init ratio of each. The system paths are Debian's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import coldstart  # noqa: E402
import events  # noqa: E402
import run  # noqa: E402
from aws_stub import AwsStub  # noqa: E402
from declaration import deployed_env, load  # noqa: E402

CERTS = Path("/etc/ssl/certs")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function", nargs="?", default="users-get")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    decl = load()
    binary = run.binary(run.TARGET, run.deployed(decl))
    hello = run.binary(run.HELLO_TARGET, "hello-world")
    event, accept = events.event_for(decl["functions"][args.function], args.function)
    variants = {
        "built-in AWS roots (the default)": {},
        "system roots (COMMERCE_TLS_ROOTS=system: bundle and directory)": {"COMMERCE_TLS_ROOTS": "system"},
        "the system bundle alone": {"COMMERCE_TLS_ROOTS": "system", "SSL_CERT_FILE": str(CERTS / "ca-certificates.crt"),
                                    "SSL_CERT_DIR": "/nonexistent"},
    }
    with AwsStub() as stub:
        for label, extra in variants.items():
            ratios, inits = [], []
            for _ in range(args.rounds):
                h = coldstart.measure(hello, {"hello": "world"}, {}, name="hello-world", endpoint_url=stub.url)
                f = coldstart.measure(binary, event, dict(deployed_env(decl, args.function), **extra),
                                      name=args.function, endpoint_url=stub.url, accept_errors=accept)
                if h.ok and f.ok:
                    ratios.append(f.init_ms / h.init_ms)
                    inits.append(f.init_ms)
            print(f"{args.function}, {label}: init median {statistics.median(inits):.1f} ms, "
                  f"{statistics.median(ratios):.2f}x hello world ({len(ratios)} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
