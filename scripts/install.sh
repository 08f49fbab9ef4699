#!/bin/sh
# Installs oxmalloc under a prefix:
#
#   PREFIX/lib/liboxmalloc.so.VERSION   the shared library (soname liboxmalloc.so.0)
#   PREFIX/lib/liboxmalloc.so.0         -> liboxmalloc.so.VERSION
#   PREFIX/lib/liboxmalloc.so           -> liboxmalloc.so.0 (for -loxmalloc)
#   PREFIX/lib/liboxmalloc.a            the static library
#   PREFIX/lib/pkgconfig/oxmalloc.pc    with the installed paths
#   PREFIX/include/oxmalloc.h
#   PREFIX/bin/oxmalloc                 the command (finds the library in ../lib)
#
# Usage: scripts/install.sh --prefix DIR [--lib FILE] [--static-lib FILE]
#                           [--bin FILE] [--profile NAME] [--source DIR]
#
# By default the files come from the build tree, target/<profile> (release;
# CARGO_TARGET_DIR is honoured): build them first with `cargo build --release`.
# --lib, --static-lib and --bin name other files (the `oxmalloc install`
# command passes its own); --source names the source tree (default: the one
# this script is in), where the header, oxmalloc.pc.in and the version are.
# DESTDIR, when set, is put before every path written (staged installs); the
# paths inside oxmalloc.pc stay PREFIX's.
set -eu

usage() {
    sed -n '2,22s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)
prefix= lib= static_lib= bin= profile=release
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a DIR}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --lib) lib=${2:?--lib needs a FILE}; shift 2 ;;
        --static-lib) static_lib=${2:?--static-lib needs a FILE}; shift 2 ;;
        --bin) bin=${2:?--bin needs a FILE}; shift 2 ;;
        --profile) profile=${2:?--profile needs a NAME}; shift 2 ;;
        --source) root=$(cd "${2:?--source needs a DIR}" && pwd); shift 2 ;;
        -h|--help) usage ;;
        *) echo "install.sh: unknown argument $1" >&2; usage ;;
    esac
done
[ -n "$prefix" ] || usage
case $prefix in
    /*) ;;
    *) prefix=$(pwd)/$prefix ;;
esac

target=${CARGO_TARGET_DIR:-$root/target}
built=$target/$profile
: "${lib:=$built/deps/liboxmalloc.so}"
: "${static_lib:=$built/deps/liboxmalloc.a}"
: "${bin:=$built/oxmalloc}"
header=$root/crates/oxmalloc-capi/include/oxmalloc.h
template=$root/crates/oxmalloc-capi/oxmalloc.pc.in
for f in "$lib" "$static_lib" "$bin" "$header" "$template"; do
    if [ ! -f "$f" ]; then
        echo "install.sh: $f does not exist (build it first: cargo build --release)" >&2
        exit 1
    fi
done

# The version of the workspace (the first `version = "..."` of Cargo.toml,
# under [workspace.package]).
version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$version" ] || { echo "install.sh: no version in $root/Cargo.toml" >&2; exit 1; }
soname=liboxmalloc.so.${version%%.*}

dest=${DESTDIR:-}
libdir=$dest$prefix/lib
mkdir -p "$libdir/pkgconfig" "$dest$prefix/include" "$dest$prefix/bin"

# A new file then a rename: a running program keeps the library it mapped.
install -m 0755 "$lib" "$libdir/.liboxmalloc.so.$version.new"
mv -f "$libdir/.liboxmalloc.so.$version.new" "$libdir/liboxmalloc.so.$version"
ln -sfn "liboxmalloc.so.$version" "$libdir/$soname"
ln -sfn "$soname" "$libdir/liboxmalloc.so"
install -m 0644 "$static_lib" "$libdir/liboxmalloc.a"
install -m 0644 "$header" "$dest$prefix/include/oxmalloc.h"
install -m 0755 "$bin" "$dest$prefix/bin/.oxmalloc.new"
mv -f "$dest$prefix/bin/.oxmalloc.new" "$dest$prefix/bin/oxmalloc"
sed -e "s|@PREFIX@|$prefix|" -e 's|@LIBDIR@|${prefix}/lib|' -e "s|@VERSION@|$version|" \
    "$template" >"$libdir/pkgconfig/oxmalloc.pc"
chmod 0644 "$libdir/pkgconfig/oxmalloc.pc"

echo "installed oxmalloc $version under $dest$prefix"
