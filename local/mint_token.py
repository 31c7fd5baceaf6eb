"""Print a token the local gateway accepts.

    python local/mint_token.py USER_ID [--admin] [--email E] [--ttl SECONDS] [--expired]

    TOKEN=$(python local/mint_token.py 01J...); curl -H "Authorization: Bearer $TOKEN" ...

Environment: LOCAL_JWT_SECRET (default `local-development-only`), as the gateway.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jwt_local  # noqa: E402

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a token the local gateway accepts.")
    parser.add_argument("user_id", metavar="USER_ID", help="the `sub` claim")
    parser.add_argument("--admin", action="store_true", help='add cognito:groups ["admin"]')
    parser.add_argument("--email", help="the `email` claim (default USER_ID@example.com)")
    parser.add_argument("--ttl", type=int, default=3600, metavar="SECONDS",
                        help="lifetime in seconds (default 3600)")
    parser.add_argument("--expired", action="store_true",
                        help="a token that expired a minute ago (for testing)")
    args = parser.parse_args(argv)
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    now = time.time()
    if args.expired:
        now -= args.ttl + 60
    token = jwt_local.mint(
        args.user_id,
        email=args.email or f"{args.user_id}@example.com",
        groups=["admin"] if args.admin else None,
        ttl_seconds=args.ttl,
        now=now,
    )
    print(token)
    return 0

if __name__ == "__main__":
    sys.exit(main())
