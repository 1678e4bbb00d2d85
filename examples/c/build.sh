#!/usr/bin/env bash
# Builds the C guest corpus: each NAME.c into NAME.wasm (wasm32-wasi, -O2),
# and records each program's native output and exit status (built with the
# system cc) under expected/, for machines without a C compiler.
#
# Needs Debian's clang, lld, wasi-libc and libclang-rt-14-dev-wasm32:
#   apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32
# The .wasm files and expected/ are committed, so tests need none of this.
set -euo pipefail
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
CC=${CC:-cc}
mkdir -p expected
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for src in *.c; do
  name=${src%.c}
  "$CLANG" --target=wasm32-wasi -O2 "$src" -o "$name.wasm" -lm
  echo "built $name.wasm"
done

# Record native runs as described in programs.toml (see tests/c_programs.rs,
# which does the same when cc is present).
python3 - "$CC" "$work" <<'PY'
import os, subprocess, sys, tomllib
cc, work = sys.argv[1], sys.argv[2]
with open("programs.toml", "rb") as f:
    programs = tomllib.load(f)["program"]
for p in programs:
    if not p.get("native", True):
        continue
    name = p["name"]
    exe = os.path.join(work, name)
    subprocess.run([cc, "-O2", "-o", exe, f"{name}.c", "-lm"], check=True)
    data = os.path.join(work, f"{name}-dir")
    os.makedirs(data, exist_ok=True)
    args = [a.replace("{dir}", data) for a in p.get("args", [])]
    stdin = open(p["stdin"], "rb") if "stdin" in p else subprocess.DEVNULL
    env = {"PATH": os.environ.get("PATH", "")} | p.get("env", {})
    run = subprocess.run([exe] + args, stdin=stdin, stdout=subprocess.PIPE, env=env)
    with open(f"expected/{p['id']}.out", "wb") as f:
        f.write(run.stdout)
    with open(f"expected/{p['id']}.status", "w") as f:
        f.write(f"{run.returncode}\n")
    print(f"recorded {p['id']}: status {run.returncode}")
PY
