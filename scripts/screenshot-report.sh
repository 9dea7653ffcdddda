#!/usr/bin/env bash
# Screenshot a campaign's report.html in headless Chromium, to see that its charts are drawn and
# the page reads well (the report is self-contained, so no server and no network are needed).
#
# Usage:  scripts/screenshot-report.sh REPORT.html [OUT.png] [WIDTH,HEIGHT]
#   REPORT.html   e.g. reports/my-campaign/report.html (written by `ninelives run` / `ninelives report`)
#   OUT.png       where to save the screenshot (default: a new file under ${TMPDIR:-/tmp})
#   WIDTH,HEIGHT  the window, in CSS pixels (default 1280,2400; the page is cut at HEIGHT)
# Prints the path of the PNG.
#
# This script installs nothing. It needs Chromium on the PATH as `chromium` (Debian:
# `apt-get install -y chromium`), or `chromium-browser`, or the binary named in $CHROMIUM.
# Exit status: 0 done, 2 bad usage or missing report, 3 no Chromium, 4 Chromium made no PNG.
set -euo pipefail

usage() { sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] && [ $# -le 3 ] || usage
report=$1
[ -f "$report" ] || { echo "screenshot-report: no such file: $report" >&2; exit 2; }
out=${2:-$(mktemp "${TMPDIR:-/tmp}/ninelives-report-XXXXXX.png")}
size=${3:-1280,2400}
[[ $size =~ ^[0-9]+,[0-9]+$ ]] || { echo "screenshot-report: window size must be WIDTH,HEIGHT, got: $size" >&2; exit 2; }

browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
  for candidate in chromium chromium-browser; do
    if command -v "$candidate" >/dev/null 2>&1; then browser=$candidate; break; fi
  done
fi
if [ -z "$browser" ] || ! command -v "$browser" >/dev/null 2>&1; then
  echo "screenshot-report: Chromium not found; install it (Debian: apt-get install -y chromium) or set CHROMIUM" >&2
  exit 3
fi

absolute=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
url="file://${absolute// /%20}"
case $out in /*) ;; *) out=$PWD/$out ;; esac
rm -f "$out"

# A throwaway profile, and no background traffic: nothing leaves the machine, nothing persists.
profile=$(mktemp -d "${TMPDIR:-/tmp}/ninelives-chromium-XXXXXX")
log=$(mktemp "${TMPDIR:-/tmp}/ninelives-chromium-XXXXXX.log")
trap 'rm -rf "$profile" "$log"' EXIT

if ! "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --no-first-run --disable-sync --hide-scrollbars --user-data-dir="$profile" \
  --screenshot="$out" --window-size="$size" "$url" >"$log" 2>&1 || [ ! -s "$out" ]; then
  echo "screenshot-report: Chromium did not write $out; its output:" >&2
  cat "$log" >&2
  exit 4
fi
echo "$out"
