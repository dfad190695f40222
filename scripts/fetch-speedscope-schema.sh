#!/usr/bin/env bash
# speedscope publishes its file format's JSON schema in its npm package; the export test
# validates against it. Fetched once into tests/.cache (not committed).
set -euo pipefail
target=${1:-tests/.cache/speedscope-file-format-schema.json}
[ -s "$target" ] && exit 0
mkdir -p "$(dirname "$target")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent speedscope@1.25.0 >/dev/null)
tar -xzf "$work"/speedscope-1.25.0.tgz -C "$work" package/dist/release/file-format-schema.json
cp "$work"/package/dist/release/file-format-schema.json "$target"
