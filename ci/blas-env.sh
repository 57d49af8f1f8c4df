# Sourced from the project root on a machine that got .carry/blas.tar.xz (ci/blas_carry.sh):
# unpacks oneDNN and OpenBLAS into /tmp/dqrm-blas and points the dynamic loader at it, where the
# CPU engine's default library names (libdnnl.so.2, then libopenblas.so.0) find them; --blas-lib
# libopenblas.so.0 picks OpenBLAS. Falls back to python3's tarfile where tar cannot read xz.
mkdir -p /tmp/dqrm-blas
tar -xJf .carry/blas.tar.xz -C /tmp/dqrm-blas 2>/dev/null ||
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
    .carry/blas.tar.xz /tmp/dqrm-blas
export LD_LIBRARY_PATH=/tmp/dqrm-blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ls /tmp/dqrm-blas
