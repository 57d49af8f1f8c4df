#!/usr/bin/env bash
# Fills .carry/ for the GPU machine (no network there) within its 64 MiB limit: runs the shared
# gpu-prepare.sh, then drops the npm packages only the wasm build (assemblyscript, binaryen), the
# browser test (playwright-core) and the workflow validator (@action-validator) use, and adds the
# registry metadata Deno needs to resolve the rest without the lockfile. On the GPU machine run tasks' commands with
# `deno run --no-lock --cached-only -A ...` after `source .carry/gpu-env.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
../shared/tools/gpu-prepare.sh >/dev/null
# The npm registry (npm's own setting, which honours .npmrc and NPM_CONFIG_REGISTRY as Deno
# does) and Deno's cache folder for it: the URL's host, "_PORT" when it names a port, then its
# path segments.
registry=$(npm config get registry)
registry=${registry%/}/
rest=${registry#*://}
hostport=${rest%%/*}
hostport=${hostport##*@}
host=${hostport%%:*}
[ "$hostport" = "$host" ] || host="${host}_${hostport#*:}"
path=${rest#*/}
npm_dir=".carry/deno_dir/npm/$host${path:+/${path%/}}"
rm -rf "$npm_dir"/{assemblyscript,binaryen,long,playwright-core,@action-validator}
for pkg in "$npm_dir"/@*/* "$npm_dir"/*; do
  [ -d "$pkg" ] || continue
  case "$pkg" in "$npm_dir"/@*) [ "$(dirname "$pkg")" = "$npm_dir" ] && continue ;; esac
  name=${pkg#"$npm_dir"/}
  [ -f "$pkg/registry.json" ] || curl -fsS "$registry${name/\//%2f}" -o "$pkg/registry.json"
done
rm -rf .carry/deno_dir/{gen,v8_code_cache_v2*,dep_analysis_cache_v2*,node_analysis_cache_v2*,check_cache_v2*}
du -sh .carry
