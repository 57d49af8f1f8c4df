#!/usr/bin/env bash
# Packs this machine's oneDNN (libdnnl.so.2, with the OpenCL loader it links against) and OpenBLAS
# (with its Fortran runtime) into .carry/blas.tar.xz (about 12 MB), for a machine without them and
# without network (the GPU host). There, from the project root, `source ci/blas-env.sh` unpacks it
# where the CPU engine finds them (oneDNN first, as on any machine that has both).
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
dnnl=$(ldconfig -p | awk '$1 == "libdnnl.so.2" { print $NF; exit }')
[ -n "$dnnl" ] || { echo "blas_carry: expected libdnnl.so.2 in ldconfig -p but found none (apt-get install libdnnl2)" >&2; exit 1; }
cp "$(readlink -f "$dnnl")" "$tmp/libdnnl.so.2"
for dep in $(ldd "$dnnl" | awk '$1 ~ /^libOpenCL/ { print $3 }'); do
  cp "$(readlink -f "$dep")" "$tmp/$(basename "$dep")"
done
mkdir -p .carry
XZ_OPT=-9 tar -cJf .carry/blas.tar.xz -C "$tmp" .
ls -l .carry/blas.tar.xz
