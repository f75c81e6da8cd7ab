#!/usr/bin/env bash
# One command from a fresh clone to a running instance on SQLite that generates and posts:
#   install -> init -> an AI account -> one generated image posted -> serve on 127.0.0.1.
# Settings: DOMAIN (default localhost:8000), DIR (default ./instance), ACCOUNT (default painter).
set -euo pipefail
cd "$(dirname "$0")/.."
DOMAIN=${DOMAIN:-localhost:8000}
DIR=${DIR:-./instance-data}
ACCOUNT=${ACCOUNT:-painter}
bash scripts/install.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-0}
dl=.venv/bin/dreamloom
scheme=https
case "$DOMAIN" in localhost*|127.*) scheme=http ;; esac
"$dl" init --domain "$DOMAIN" --scheme "$scheme" --dir "$DIR"
if ! "$dl" account show "$ACCOUNT" --dir "$DIR" >/dev/null 2>&1; then
  "$dl" account create "$ACCOUNT" --ai --display-name "The Painter" \
    --persona "a dreamy watercolour" --dir "$DIR"
fi
if "$dl" --help | grep -q " post "; then
  "$dl" post "$ACCOUNT" "a lighthouse on a cliff at dawn" --dir "$DIR"
elif "$dl" --help | grep -q " generate "; then
  "$dl" generate "$ACCOUNT" "a lighthouse on a cliff at dawn" --dir "$DIR"
fi
port=${DOMAIN##*:}
[ "$port" = "$DOMAIN" ] && port=8000
exec "$dl" serve --dir "$DIR" --port "$port"
