# syntax=docker/dockerfile:1

# The build stage. Swift 6.2: the dependencies' manifests (Hummingbird, swift-log, swift-metrics,
# AsyncHTTPClient, ...) declare swift-tools-version 6.2, which a 6.1 toolchain cannot read.
FROM swift:6.2-bookworm AS build

# hiredis is the one C library the package links; pkg-config tells scripts/swift-with-hiredis where
# its headers and library are.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libhiredis-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# The manifest (and Package.resolved, when the context has one) before the sources, so that a change
# to the sources reuses the layer with the fetched dependencies. With a Package.resolved the image
# builds the versions that were built and tested with it, not whatever is newest today.
COPY Package.swift Package.resolved* ./
RUN if [ -f Package.resolved ]; then swift package resolve --force-resolved-versions; else swift package resolve; fi

COPY . .

# --static-swift-stdlib links the Swift runtime and Foundation into the binary, so the runtime stage
# is plain Debian with hiredis and needs no Swift toolchain image: the binary then needs only
# libhiredis, libstdc++, zlib and glibc. Stripping the debug information alone takes about a third
# off and keeps the symbol table, so that a crash's backtrace still names its functions.
RUN scripts/swift-with-hiredis build -c release --product resumable-stream-server --static-swift-stdlib \
    && install -D -m 0755 .build/release/resumable-stream-server /out/resumable-stream-server \
    && strip --strip-debug /out/resumable-stream-server

# The runtime stage: the same Debian release as the build stage, so that the hiredis and glibc the
# binary was linked against are the ones it loads.
FROM debian:bookworm-slim

# libhiredis0.14: the library that libhiredis-dev installed headers for in the build stage.
# ca-certificates: the proxy source may reach HTTPS origins. curl: the compose healthcheck.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libhiredis0.14 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# The service needs no privileges: it listens on an unprivileged port and writes no files.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app

COPY --from=build /out/resumable-stream-server /usr/local/bin/resumable-stream-server

USER app

# The binary's own default is 127.0.0.1, which nothing outside the container could reach.
ENV HOST=0.0.0.0 \
    PORT=8080
EXPOSE 8080

# Exec form: the binary is PID 1 and gets the SIGTERM of `docker stop` itself, which starts its drain.
CMD ["/usr/local/bin/resumable-stream-server"]
