#!/usr/bin/env bash
# Packs this machine's OpenBLAS and the Fortran runtime it links against into .carry/blas.tar.xz
# (about 5 MB), for a machine without OpenBLAS and without network (the GPU host). There, from the
# project root, `source ci/blas-env.sh` unpacks it and points the CPU engine at it.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(ldconfig -p | awk '$1 == "libopenblas.so.0" { print $NF; exit }')
[ -n "$lib" ] || { echo "blas_carry: expected libopenblas.so.0 in ldconfig -p but found none (apt-get install libopenblas0-pthread)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$(readlink -f "$lib")" "$tmp/libopenblas.so.0"
# Its Fortran runtime, which a host with PyTorch alone may lack.
for dep in $(ldd "$lib" | awk '$1 ~ /^lib(gfortran|quadmath)/ { print $3 }'); do
  cp "$(readlink -f "$dep")" "$tmp/$(basename "$dep")"
done
mkdir -p .carry
tar -cJf .carry/blas.tar.xz -C "$tmp" .
ls -l .carry/blas.tar.xz
