#!/usr/bin/env bash
# `make build`: the one binary every Lambda runs (package bootstrap: each function's main,
# chosen by Lambda's _HANDLER, which Terraform sets to the function's name) as
# target/lambda/bootstrap/bootstrap.zip, built for the architecture the declaration gives
# (infra/declaration.json, lambda.architecture), the one Terraform deploys them with.
# target/lambda/architecture records what was built, and Terraform refuses a zip of another
# (a precondition in modules/regional/functions.tf). One binary is one fat-LTO link instead
# of one per function (docs/decisions.md, "One binary for every function").
#
#   infra/build.sh           build
#   infra/build.sh --check   only say whether this machine can build that architecture
#
# RUST_SYSROOT names the toolchain to look in (default: `rustc --print sysroot`).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
declaration="${DECLARATION:-infra/declaration.json}"

arch="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["lambda"]["architecture"])' "$declaration")"
case "$arch" in
  arm64) target=aarch64-unknown-linux-gnu flag=--arm64 ;;
  x86_64) target=x86_64-unknown-linux-gnu flag=--x86-64 ;;
  *)
    echo "build.sh: lambda.architecture in $declaration is \"$arch\"; Lambda runs arm64 or x86_64" >&2
    exit 2
    ;;
esac

sysroot="${RUST_SYSROOT:-$(rustc --print sysroot)}"
if [[ ! -d "$sysroot/lib/rustlib/$target/lib" ]]; then
  cat >&2 <<EOF
build.sh: the functions deploy as $arch ($declaration, lambda.architecture), which needs
Rust's standard library for $target, and the toolchain at $sysroot does not have it.
Either:
  - install it where the internet is reachable:   rustup target add $target
  - or deploy x86_64 functions: set "architecture": "x86_64" under "lambda" in
    $declaration (Terraform reads the same setting, so the two cannot disagree).
EOF
  exit 1
fi
if [[ "${1:-}" == "--check" ]]; then
  echo "build.sh: $arch ($target) can be built here"
  exit 0
fi

out="${CARGO_TARGET_DIR:-target}/lambda"
mkdir -p "$out"
rm -f "$out/architecture" # a failed build leaves no claim about the zip
package="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["lambda"]["package"])' "$declaration")"
cargo lambda build --release "$flag" --output-format zip --locked --package "$package"
echo "$arch" >"$out/architecture"
echo "build.sh: $out/$package/bootstrap.zip for $arch, $(du -k "$out/$package/bootstrap.zip" | cut -f1) KB"
