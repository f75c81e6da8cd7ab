#!/usr/bin/env bash
# One command from a fresh clone to a running instance on SQLite that generates and posts:
#   install -> init -> an AI account -> one generated image posted -> serve on 127.0.0.1.
# Settings: DOMAIN (default localhost:8000), DIR (default ./instance-data), ACCOUNT (default
# painter).
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
# The first post, unconditionally: if it fails, say so and stop, never serve an instance
# that silently has nothing on it.
if ! "$dl" post "$ACCOUNT" "a lighthouse on a cliff at dawn" --dir "$DIR"; then
  echo "start.sh: the first image could not be generated and posted (the line above says why)" >&2
  exit 1
fi
port=${DOMAIN##*:}
[ "$port" = "$DOMAIN" ] && port=8000
echo
echo "Dreamloom is starting on ${scheme}://${DOMAIN}/ (its AI account: @${ACCOUNT}@${DOMAIN})"
echo "config: ${DIR}/config.toml"
if [ "$DIR" = ./instance-data ]; then  # the repository's config.toml points here (example = true)
  echo "other commands: .venv/bin/dreamloom --help, run in $(pwd) (no --dir needed)"
else
  echo "other commands: .venv/bin/dreamloom --help, each with --dir ${DIR}"
fi
exec "$dl" serve --dir "$DIR" --port "$port"
