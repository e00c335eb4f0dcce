#!/usr/bin/env bash
# Reference implementation of the scaffolding contract that
# `keyward plugin new <name> --lang <lang> --world <world>` follows, used to
# test the templates:
#
#   examples/templates/new.sh <lang> <world> <name> <dir>
#
# <dir> gets, with {{name}}, {{crate}}, {{world}} and {{interface}} replaced
# in every file (see README.md):
#   templates/<lang>/all/**       -> <dir>/**
#   templates/<lang>/<world>/**   -> <dir>/**
#   templates/cases/<world>/*     -> <dir>/cases/
#   plugins/toolchain.sh          -> <dir>/toolchain.sh
#   wit/keyward.wit               -> <dir>/wit/keyward.wit
#   plugins/c/common/kw.{c,h}     -> <dir>/kw.{c,h}          (lang c only)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

[[ $# -eq 4 ]] || { echo "usage: $0 <lang> <world> <name> <dir>" >&2; exit 2; }
lang="$1" world="$2" name="$3" dir="$4"
[[ -d "$here/$lang/$world" ]] || { echo "no template for $lang/$world" >&2; exit 2; }
[[ "$name" =~ ^[a-z][a-z0-9-]*$ ]] || { echo "name must match [a-z][a-z0-9-]*" >&2; exit 2; }
[[ ! -e "$dir" ]] || { echo "$dir exists" >&2; exit 2; }
case "$world" in policy) interface=decider ;; renderer) interface=render ;; esac
crate="${name//-/_}"

mkdir -p "$dir/cases" "$dir/wit"
cp -r "$here/$lang/all/." "$dir/"
cp -r "$here/$lang/$world/." "$dir/"
cp "$here/cases/$world/"*.yaml "$dir/cases/"
cp "$repo/examples/plugins/toolchain.sh" "$dir/toolchain.sh"
cp "$repo/wit/keyward.wit" "$dir/wit/keyward.wit"
if [[ "$lang" == c ]]; then
    cp "$repo/examples/plugins/c/common/kw.c" "$repo/examples/plugins/c/common/kw.h" "$dir/"
fi
find "$dir" -type f -print0 | while IFS= read -r -d '' f; do
    sed -i -e "s/{{name}}/$name/g" -e "s/{{crate}}/$crate/g" \
        -e "s/{{world}}/$world/g" -e "s/{{interface}}/$interface/g" "$f"
done
chmod +x "$dir/build.sh"
echo "created $dir"
