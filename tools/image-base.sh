#!/usr/bin/env bash
# Makes sure podman's local store has the Dockerfile's base images,
# debian:bookworm and debian:bookworm-slim. A missing one is pulled; where no
# registry answers (an isolated CI machine, a mirror-only network) both are
# made from Debian's own archive instead:
#
#   debootstrap --variant=minbase bookworm DIR MIRROR
#   tar -C DIR -c . | podman import - debian:bookworm      (and :bookworm-slim)
#
# MIRROR is the Debian archive this machine's apt already uses (read from
# /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list), so no host is
# written here. The root file system is cached as a tarball (PRODUCT_IMAGE_CACHE,
# default /var/cache/product-service-image), so only the first run downloads;
# delete it to take newer packages. minbase is what the official images hold
# (Essential packages and apt); the -slim tag is the same root without
# documentation, man pages and translations, as the official slim image.
#
#   tools/image-base.sh [--engine podman]
set -euo pipefail

engine=podman
while [ $# -gt 0 ]; do
  case $1 in
    --engine) [ $# -ge 2 ] || { echo "image-base: --engine needs a value" >&2; exit 2; }
              engine=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image-base: unknown argument $1" >&2; exit 2 ;;
  esac
done

suite=bookworm
tags=("debian:$suite" "debian:$suite-slim")
cache=${PRODUCT_IMAGE_CACHE:-/var/cache/product-service-image}
tarball="$cache/debootstrap-$suite-minbase.tar"

missing=()
for tag in "${tags[@]}"; do
  if ! "$engine" image exists "$tag"; then missing+=("$tag"); fi
done
[ ${#missing[@]} -gt 0 ] || exit 0

# A registry first: a bounded wait, since a network that drops packets would
# otherwise hold the pull for minutes.
still=()
for tag in "${missing[@]}"; do
  if timeout 300 "$engine" pull -q "docker.io/library/$tag" >/dev/null 2>&1; then
    echo "image-base: pulled $tag"
  else
    still+=("$tag")
  fi
done
[ ${#still[@]} -gt 0 ] || exit 0

# The first archive URI for the suite in apt's own configuration (deb822
# stanzas first, then one-line sources), skipping security and updates.
mirror_from_apt() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v suite="$suite" '
      function flush() { if (uris != "" && has_suite) { print uris; exit } uris = ""; has_suite = 0 }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { uris = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has_suite = 1 }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk -v suite="$suite" '
      $1 == "deb" { i = 2; if ($i ~ /^\[/) while ($i !~ /\]$/) i++; if ($i ~ /^\[/ || $i ~ /\]$/) i++;
                    if ($(i + 1) == suite) { print $i; exit } }' "$f"
  done
}

if [ ! -s "$tarball" ]; then
  mirror=$(mirror_from_apt | head -n 1)
  [ -n "$mirror" ] || { echo "image-base: no Debian $suite archive in apt's sources" >&2; exit 1; }
  command -v debootstrap >/dev/null ||
    { echo "image-base: debootstrap is not installed (tools/install-deps.sh --image)" >&2; exit 1; }
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/root.XXXXXX")
  trap 'rm -rf "$root" "$tarball.tmp"' EXIT
  echo "image-base: no registry; debootstrap --variant=minbase $suite from $mirror (cached in $tarball)"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
  # What debootstrap leaves of this machine's own configuration and caches.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
    "$root"/etc/resolv.conf "$root"/etc/hostname
  tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$root"
  trap - EXIT
fi

# The slim variant, as Debian's official one is made (debuerreotype's
# slimify): no documentation but the copyright files, no man or info pages,
# no translations, and dpkg told to leave them out of later installs too.
slim_tarball="$cache/debootstrap-$suite-minbase-slim.tar"
if [ ! -s "$slim_tarball" ]; then
  root=$(mktemp -d "$cache/root.XXXXXX")
  trap 'rm -rf "$root" "$slim_tarball.tmp"' EXIT
  tar --numeric-owner -C "$root" -xf "$tarball"
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/usr/share/lintian
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/lintian/*' \
    >"$root/etc/dpkg/dpkg.cfg.d/docker-slim"
  tar --numeric-owner -C "$root" -cf "$slim_tarball.tmp" .
  mv "$slim_tarball.tmp" "$slim_tarball"
  rm -rf "$root"
  trap - EXIT
fi

for tag in "${still[@]}"; do
  from=$tarball
  case $tag in *-slim) from=$slim_tarball ;; esac
  "$engine" import -q "$from" "$tag" >/dev/null
  echo "image-base: made $tag from $from"
done
