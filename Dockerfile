# product-service image: build and test on Debian 12, run on Debian 12 slim.
#
#   docker build -t product-service:0.1.0 .                      # build + unit tests
#   docker build --build-arg CHECKS=full -t product-service .    # + CI's whole tools/test.sh
#   docker build --build-arg CHECKS=none -t product-service .    # build only
#   podman build --format docker ...                             # (keeps the HEALTHCHECK)
#
# CHECKS=unit (the default) runs the unit tests of a test build (fault hooks
# on), the part of CI that needs nothing from the build sandbox. CHECKS=full
# runs tools/test.sh exactly as CI does: release, test, ASan+UBSan and fuzz
# builds; integration tests that start real servers (product-server, etcd,
# PostgreSQL) on loopback; valgrind; LeakSanitizer; 30 s per fuzz target.
# It takes far longer, and LeakSanitizer needs ptrace, which some builders'
# seccomp profiles deny inside `docker build`; CI runs it on its own machine.
#
# The runtime stage holds the three binaries and the shared libraries they
# link, nothing else: no compiler, no key, no certificate, no secret. TLS
# material and the JWT secret come from mounted files at run time (see
# docs/deployment.md). tests/integration/test_deploy.py checks that every
# library ldd lists belongs to a package installed below or to the base image;
# tools/image-test.sh builds the image and runs it for real.

# ------------------------------------------------------------------ build ---
FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src

# The dependency layer first, so that a source change does not reinstall it
# (the Debian packages, and the npm packages the lock file pins): only the
# files install-deps.sh reads are copied before it runs (lock_pins_all.py
# vets the lock file before an npm retry without TLS verification).
COPY tools/install-deps.sh tools/lock_pins_all.py tools/
COPY tests/integration/node/package.json tests/integration/node/package-lock.json \
     tests/integration/node/
RUN tools/install-deps.sh && rm -rf /var/lib/apt/lists/*

# Declared here, not above: a build argument is part of every later RUN's
# cache key, so --build-arg CHECKS=none must not rebuild the dependency layer.
ARG CHECKS=unit
COPY . .
RUN set -eu; \
    case "$CHECKS" in \
      full) tools/test.sh ;; \
      unit) cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRODUCT_TEST_FAULTS=ON \
            && cmake --build build-test -j"$(nproc)" \
            && (cd build-test && ctest --output-on-failure -L unit) ;; \
      none) ;; \
      *) echo "CHECKS must be full, unit or none" >&2; exit 2 ;; \
    esac
RUN tools/build-release.sh \
    && strip --strip-unneeded build/bin/product-server build/bin/product-client build/bin/mint-token

# ---------------------------------------------------------------- runtime ---
FROM debian:bookworm-slim AS runtime

# Runtime libraries only (their dependencies come along). libstdc++6 is
# named although slim has it today: the gRPC core needs it and it is not an
# Essential package, so nothing guarantees it stays in the base image.
# The packages' documentation, man pages and translations are not unpacked
# (the copyright files are), as in the official slim base, and apt's lists
# and package caches go in the same layer: nothing in the image runs apt.
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
         'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
         'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/lintian/*' \
         > /etc/dpkg/dpkg.cfg.d/product-service-slim \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
         libgrpc29 libprotobuf-c1 libjwt0 libjansson4 libssl3 libsqlite3-0 \
         libmicrohttpd12 libpq5 libcurl4 libstdc++6 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
         /var/log/apt /var/log/dpkg.log

# A fixed numeric user (deploy/k8s uses the same runAsUser/fsGroup), and the
# data directory the default SQLite store lives in (a volume in Kubernetes).
RUN groupadd --system --gid 10001 product \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
         --shell /usr/sbin/nologin product \
    && mkdir -p /data \
    && chown 10001:10001 /data \
    && chmod 0750 /data

COPY --from=build /src/build/bin/product-server /src/build/bin/product-client \
     /src/build/bin/mint-token /usr/local/bin/

ENV LISTEN_ADDR=0.0.0.0:50051 \
    HEALTH_LISTEN_ADDR=0.0.0.0:8081 \
    STORE=sqlite:/data/products.db \
    LOG_FORMAT=json

USER 10001:10001
WORKDIR /data
# 50051 gRPC API (TLS), 8081 plaintext health for probes, 9090 metrics
# (only with METRICS_LISTEN_ADDR).
EXPOSE 50051 8081 9090

# For `docker run` and compose (Kubernetes uses its own grpc probes,
# deploy/k8s): the image's product-client asks the plaintext probe port for
# the server as a whole (""), which stays SERVING through a store outage, so
# that an orchestrator that replaces unhealthy containers does not replace
# them for an outage a restart cannot fix. The port follows
# HEALTH_LISTEN_ADDR (a probe bound to one non-loopback address needs its
# own --health-cmd). Kept only by the docker image format (podman build
# --format docker); OCI images have no HEALTHCHECK.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD exec /usr/local/bin/product-client --insecure --timeout 3 \
        --addr "127.0.0.1:${HEALTH_LISTEN_ADDR##*:}" health

# Exec form: the server is PID 1 and gets SIGTERM itself (it deregisters,
# drains for up to 10 s and exits 0).
ENTRYPOINT ["/usr/local/bin/product-server"]
