#!/bin/sh
# A stand-in for `pip install -r REQUIREMENTS --target DEST`: each package is "downloaded"
# from /wheels into pip's cache (/root/.cache/pip) unless already there, then installed.
set -eu
requirements=$1
dest=$2
cache=/root/.cache/pip
[ -n "${PIP_INDEX_TOKEN:-}" ] || { echo "no index token" >&2; exit 1; }
echo "authenticated to the private index (token of ${#PIP_INDEX_TOKEN} characters)"
mkdir -p "$cache" "$dest"
while read -r requirement; do
    [ -n "$requirement" ] || continue
    wheel="$(echo "$requirement" | sed 's/==/-/').whl"
    if [ -f "$cache/$wheel" ]; then
        echo "Using cached $wheel"
    else
        echo "Downloading $wheel"
        cp "/wheels/$wheel" "$cache/$wheel"
    fi
    cp "$cache/$wheel" "$dest/"
done < "$requirements"
