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
# What `deno run` never loads (source maps, CommonJS type declarations, zod's TypeScript sources)
# and a code cache of runs here: without them the carry stays under the limit.
find "$npm_dir" \( -name '*.map' -o -name '*.d.cts' \) -delete
rm -rf "$npm_dir"/zod/*/src .carry/deno_dir/v8_code_cache_v2*
for pkg in "$npm_dir"/@*/* "$npm_dir"/*; do
  [ -d "$pkg" ] || continue
  case "$pkg" in "$npm_dir"/@*) [ "$(dirname "$pkg")" = "$npm_dir" ] && continue ;; esac
  name=${pkg#"$npm_dir"/}
  [ -f "$pkg/registry.json" ] || curl -fsS "$registry${name/\//%2f}" -o "$pkg/registry.json"
done
# Mesa's Vulkan device-select layer, so that --gpu-index N > 0 can open GPU N there
# (engine/gpu/adapter_select.ts): the layer and the shared libraries it links, taken from the
# Debian packages (not from this machine's files), with a manifest that names the library beside
# it. The carried Vulkan loader (1.3.239) reads implicit layers only from system folders, so
# gpu-env.sh finds it through VK_ADD_LAYER_PATH (VK_LAYER_PATH unless set) and enables it with VK_INSTANCE_LAYERS.
layer_dir=.carry/vklayer
if [ ! -f "$layer_dir/libVkLayer_MESA_device_select.so" ]; then
  debs=$(mktemp -d)
  chmod a+rwx "$debs" # apt-get download writes as its own user
  mkdir -p /tmp/amd64-lists/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists)
  [ -n "$(ls /tmp/amd64-lists/*Packages* 2>/dev/null)" ] || apt-get "${o[@]}" update >/dev/null 2>&1
  # The layer links libxcb-dri3, libwayland-client, libdrm, libxcb and, through them, libXau,
  # libXdmcp, libbsd, libmd and libffi: about 1 MB in all.
  (cd "$debs" && apt-get "${o[@]}" download mesa-vulkan-drivers libxcb-dri3-0 libwayland-client0 \
    libdrm2 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 libffi8 >/dev/null)
  for f in "$debs"/*.deb; do dpkg -x "$f" "$debs/root"; done
  mkdir -p "$layer_dir/lib"
  cp "$debs"/root/usr/lib/x86_64-linux-gnu/libVkLayer_MESA_device_select.so "$layer_dir/"
  for so in libxcb-dri3.so.0 libwayland-client.so.0 libdrm.so.2 libxcb.so.1 libXau.so.6 \
    libXdmcp.so.6 libbsd.so.0 libmd.so.0 libffi.so.8; do
    cp -L "$(find "$debs/root" -name "$so" | head -1)" "$layer_dir/lib/$so"
  done
  # A library_path with a "/" is relative to the manifest; a bare name would go to dlopen's search.
  sed 's|"library_path": *"libVkLayer|"library_path": "./libVkLayer|' \
    "$debs"/root/usr/share/vulkan/implicit_layer.d/VkLayer_MESA_device_select.json \
    >"$layer_dir/VkLayer_MESA_device_select.json"
  grep -q '"./libVkLayer_MESA_device_select.so"' "$layer_dir/VkLayer_MESA_device_select.json"
  rm -rf "$debs"
fi
# Deno's npm package again as xz -9 (41 MB as gzip, 30 as xz; 2 s to unpack there): room under the
# limit for ci/blas_carry.sh's 12 MB. gpu-env.sh unpacks it (python3's tarfile where xz is missing).
tgz=$(ls .carry/deno-linux-x64-glibc-*.tgz)
txz=${tgz%.tgz}.tar.xz
for old in .carry/deno-linux-x64-glibc-*.tar.xz; do [ "$old" = "$txz" ] || rm -f "$old"; done
if [ ! -f "$txz" ]; then
  unpacked=$(mktemp -d)
  tar -xzf "$tgz" -C "$unpacked"
  tar -C "$unpacked" -cf - package | xz -9 -T0 >"$txz.part" && mv "$txz.part" "$txz"
  rm -rf "$unpacked"
fi
rm -f "$tgz"
sed -i 's|tar -xzf .carry/deno-linux-x64-glibc-\*.tgz -C /tmp/deno-bin|{ xz -dc .carry/deno-linux-x64-glibc-*.tar.xz \| tar -xf - -C /tmp/deno-bin; } 2>/dev/null \|\| python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" .carry/deno-linux-x64-glibc-*.tar.xz /tmp/deno-bin|' .carry/gpu-env.sh
grep -q 'deno-linux-x64-glibc-\*.tar.xz' .carry/gpu-env.sh ||
  { echo "gpu_carry: expected gpu-env.sh to unpack .carry/deno-linux-x64-glibc-*.tgz, but found no such line to rewrite" >&2; exit 1; }
# gpu-prepare.sh wrote the shared gpu-env.sh: add the layer's environment to it.
cat >>.carry/gpu-env.sh <<'ENV'
# Mesa's device-select layer (ci/gpu_carry.sh): its libraries go where the system has none of
# that name (never over a system library), the loader finds its manifest in .carry/vklayer.
for f in .carry/vklayer/lib/*.so.*; do
  [ -e "$f" ] || continue
  ldconfig -p | grep -q "^\s*$(basename "$f") " || cp "$f" /usr/lib/x86_64-linux-gnu/
done
ldconfig
# An enabled layer that cannot load fails every Vulkan instance: enable it only when it is here
# and links (DQRM_NO_DEVICE_SELECT=1 leaves it off: only GPU index 0 opens then).
if [ -n "${DQRM_NO_DEVICE_SELECT:-}" ] || [ ! -f .carry/vklayer/libVkLayer_MESA_device_select.so ]; then
  :
elif ldd .carry/vklayer/libVkLayer_MESA_device_select.so | grep -q "not found"; then
  echo "gpu-env: the device-select layer does not link here; only GPU index 0 will open" >&2
else
  export VK_ADD_LAYER_PATH=$PWD/.carry/vklayer${VK_ADD_LAYER_PATH:+:$VK_ADD_LAYER_PATH}
  export VK_LAYER_PATH=${VK_LAYER_PATH:-$PWD/.carry/vklayer}
  export VK_INSTANCE_LAYERS=VK_LAYER_MESA_device_select${VK_INSTANCE_LAYERS:+:$VK_INSTANCE_LAYERS}
fi
ENV
rm -rf .carry/deno_dir/{gen,v8_code_cache_v2*,dep_analysis_cache_v2*,node_analysis_cache_v2*,check_cache_v2*}
du -sh .carry
