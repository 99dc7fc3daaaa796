#!/usr/bin/env bash
# Checks that every relative link in README.md, DEVELOPERS.md and docs/*.md resolves to a file or folder of the
# repository (links to other sites and in-page anchors are not checked; code spans and fenced blocks are skipped).
#   scripts/check/links.sh [FILE.md ...]      # exit status 1 and one line per broken link if any
set -euo pipefail
cd "$(dirname "$0")/../.."
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(README.md DEVELOPERS.md docs/*.md)
broken=0
checked=0
for file in "${files[@]}"; do
    dir=$(dirname "$file")
    # Drop fenced code blocks, then inline code spans, then list every [text](target) target with its line number.
    while IFS=: read -r line target; do
        target=${target%%#*}                       # the file part of file.md#anchor
        target=${target%% \"*}                     # a link title: [a](b "title")
        [ -n "$target" ] || continue               # an in-page anchor
        case "$target" in http://*|https://*|mailto:*) continue ;; esac
        checked=$((checked + 1))
        if [ ! -e "$dir/$target" ]; then
            echo "$file:$line: broken link: $target" >&2
            broken=$((broken + 1))
        fi
    done < <(awk '/^[[:space:]]*```/ { fenced = !fenced; print ""; next } { print fenced ? "" : $0 }' "$file" \
             | sed -e 's/`[^`]*`//g' \
             | grep -n -o -E '\]\([^)[:space:]]+( "[^"]*")?\)' \
             | sed -E 's/^([0-9]+):\]\((.*)\)$/\1:\2/')
done
if [ "$broken" -gt 0 ]; then
    echo "links: $broken broken of $checked relative links in ${#files[@]} files" >&2
    exit 1
fi
echo "links: all $checked relative links in ${#files[@]} files resolve"
