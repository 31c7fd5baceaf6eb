#!/usr/bin/env bash
# Static checks of the Terraform in infra/, independent of the Makefile:
#   1. checkov (pinned in infra/requirements-tools.txt, in its own venv .venv-tools/ at the
#      repo root: checkov pins an older boto3 that would break moto in .venv/), every check
#      must pass or carry a justified `#checkov:skip=CKV_...:reason` comment inside the
#      resource it skips;
#   2. `terraform fmt -check -recursive infra`, when a terraform binary is on PATH.
# `make test-infra` also lints the generated role policies with parliament from the same venv
# (infra/lint_iam.py). Run from anywhere: infra/check.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/.venv-tools"
requirements="$root/infra/requirements-tools.txt"
if [[ ! -f "$venv/.installed" ]] || [[ "$requirements" -nt "$venv/.installed" ]]; then
  echo "check.sh: installing infra/requirements-tools.txt into .venv-tools/"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  touch "$venv/.installed"
fi

echo "check.sh: checkov -d infra"
# --quiet prints failed checks only; checkov exits non-zero when any check fails.
# --skip-download: no calls to the Prisma Cloud API (guidelines, severities), offline-safe.
"$venv/bin/checkov" -d infra --framework terraform --quiet --compact --skip-download \
  --skip-path '\.terraform'

if command -v terraform >/dev/null 2>&1; then
  echo "check.sh: terraform fmt -check -recursive infra"
  terraform fmt -check -recursive -diff infra
else
  echo "check.sh: terraform not on PATH, skipped terraform fmt -check"
fi

echo "check.sh: all passed"
