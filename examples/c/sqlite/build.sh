#!/usr/bin/env bash
# Builds sqlite_bench.wasm: SQLite (its amalgamation, public domain) with a
# SQL workload driver, for wasm32-wasi at -O2. A 1.7 MB module of about
# 1,800 functions around a bytecode interpreter (the VDBE): the large
# C-built module the compile-speed benchmark measures
# (`cargo run --release --manifest-path benches/corpus/Cargo.toml -- compile`).
#
# SQLite's source comes from the libsqlite3-sys crate on crates.io (which
# bundles the amalgamation and a minimal WASI file system), fetched by
# cargo into its registry. Needs what ../build.sh needs, and cargo.
# The .wasm and the expected output (../expected/sqlite.out) are
# committed, so tests need none of this.
set -euo pipefail
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
VERSION=0.40.0
registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
src=$(ls -d "$registry"/*/libsqlite3-sys-$VERSION/sqlite3 2>/dev/null | head -1 || true)
if [ -z "$src" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/src"
  printf '[package]\nname = "fetch-sqlite"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nlibsqlite3-sys = { version = "=%s", features = ["bundled"] }\n' \
    "$VERSION" > "$work/Cargo.toml"
  echo 'fn main() {}' > "$work/src/main.rs"
  cargo fetch --manifest-path "$work/Cargo.toml"
  src=$(ls -d "$registry"/*/libsqlite3-sys-$VERSION/sqlite3 | head -1)
fi
"$CLANG" --target=wasm32-wasi -O2 \
  -DSQLITE_THREADSAFE=0 -DSQLITE_OS_OTHER=1 -DSQLITE_OMIT_LOAD_EXTENSION \
  -DSQLITE_TEMP_STORE=3 -DLONGDOUBLE_TYPE=double -DSQLITE_OMIT_WAL \
  -DSQLITE_OMIT_SHARED_CACHE -DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_ENABLE_FTS5 \
  -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_JSON1 \
  -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_GETPID -D_WASI_EMULATED_SIGNAL \
  -D_WASI_EMULATED_PROCESS_CLOCKS \
  -I"$src" sqlite_bench.c "$src/sqlite3.c" "$src/wasm32-wasi-vfs.c" \
  -o sqlite_bench.wasm -lm -lwasi-emulated-mman -lwasi-emulated-getpid \
  -lwasi-emulated-signal -lwasi-emulated-process-clocks
echo "built sqlite_bench.wasm"
