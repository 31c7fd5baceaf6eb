#!/usr/bin/env python3
"""What the TLS root store costs a function's init (the largest share of it, measured).

    .venv/bin/python local/bench/roots.py [FUNCTION] [--rounds 15]     # after make bench

The SDK's HTTPS client trusts the system's roots (rustls-native-certs), which it loads while
the function builds its clients, before the first GET /next: the bundle, and then every file
of the certificate directory. This runs one release function (default users-get) against
hello world, alternately, with the roots as they are, with the bundle alone (SSL_CERT_FILE,
no directory), and with only the roots that AWS endpoints chain to (Amazon Root CA 1-4,
Starfield Services G2), and prints the init ratio of each. The system paths are Debian's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import coldstart  # noqa: E402
import events  # noqa: E402
import run  # noqa: E402
from aws_stub import AwsStub  # noqa: E402
from declaration import function_env, load  # noqa: E402

CERTS = Path("/etc/ssl/certs")
AWS_ROOTS = ["Amazon_Root_CA_1", "Amazon_Root_CA_2", "Amazon_Root_CA_3", "Amazon_Root_CA_4",
             "Starfield_Services_Root_Certificate_Authority_-_G2"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function", nargs="?", default="users-get")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    decl = load()
    binary = run.binary(run.TARGET, args.function)
    hello = run.binary(run.HELLO_TARGET, "hello-world")
    event, accept = events.event_for(decl["functions"][args.function])
    aws_roots = Path(tempfile.mkdtemp()) / "aws-roots.pem"
    aws_roots.write_text("".join((CERTS / f"{n}.pem").read_text() for n in AWS_ROOTS))
    variants = {
        "system roots (bundle and directory)": {},
        "the bundle alone": {"SSL_CERT_FILE": str(CERTS / "ca-certificates.crt"), "SSL_CERT_DIR": "/nonexistent"},
        "AWS's roots alone": {"SSL_CERT_FILE": str(aws_roots), "SSL_CERT_DIR": "/nonexistent"},
    }
    with AwsStub() as stub:
        for label, extra in variants.items():
            ratios, inits = [], []
            for _ in range(args.rounds):
                h = coldstart.measure(hello, {"hello": "world"}, {}, name="hello-world", endpoint_url=stub.url)
                f = coldstart.measure(binary, event, dict(function_env(decl, args.function), **extra),
                                      name=args.function, endpoint_url=stub.url, accept_errors=accept)
                if h.ok and f.ok:
                    ratios.append(f.init_ms / h.init_ms)
                    inits.append(f.init_ms)
            print(f"{args.function}, {label}: init median {statistics.median(inits):.1f} ms, "
                  f"{statistics.median(ratios):.2f}x hello world ({len(ratios)} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
