#!/usr/bin/env bash
# Configures and builds the release tree build/ (what tools/run.sh runs and
# bench/run.sh measures): CMAKE_BUILD_TYPE=Release with Debian's hardening
# flags as a package build gets them from dpkg-buildflags (hardening=+all:
# -fstack-protector-strong, -Wformat -Werror=format-security, relro + now),
# with _FORTIFY_SOURCE raised from 2 to 3. Extra arguments go to cmake's
# configure step (tools/test.sh adds -DPRODUCT_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cppflags=$(dpkg-buildflags --get CPPFLAGS)
cflags="${cppflags/_FORTIFY_SOURCE=2/_FORTIFY_SOURCE=3} $(dpkg-buildflags --get CFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)

# The flags are given as cache values, not through CFLAGS/LDFLAGS, so that an
# existing build/ picks them up too (cmake reads the environment only once).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPRODUCT_TESTS=OFF \
  -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" "$@" >/dev/null
cmake --build build -j"$(nproc)"
