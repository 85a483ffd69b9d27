# syntax=docker/dockerfile:1
#
# Tooken in a container: the `dist` build of `tooken` on distroless (glibc,
# CA certificates, no shell), running as a non-root user, its SQLite store
# in the /data volume.
#
#   docker build -t tooken --build-arg TOOKEN_GIT_COMMIT=$(git rev-parse HEAD) .
#   docker run -d --name tooken -p 7878:7878 -v tooken-data:/data tooken
#   docker logs tooken      # the first start prints the first API key
#
# Builds for linux/amd64 and linux/arm64 on a builder of either kind
# (`docker buildx build --platform linux/amd64,linux/arm64 .`): the compiler
# runs on the builder's own platform and cross-compiles, so nothing is
# emulated.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# The Rust target and, when it is not the builder's own, a C cross compiler
# (C builds SQLite, ring and mimalloc). Debian's native gcc answers to the
# same triplet names, so the settings below hold for native builds too.
# hadolint ignore=DL3008
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-gnu; gcc_arch=x86-64 ;; \
      arm64) target=aarch64-unknown-linux-gnu; gcc_arch=aarch64 ;; \
      *) echo "unsupported platform: $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    echo "$target" > /rust-target; \
    if [ "$(rustc -vV | sed -n 's/^host: //p')" != "$target" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends "gcc-$gcc_arch-linux-gnu" "libc6-dev-$TARGETARCH-cross"; \
      rm -rf /var/lib/apt/lists/*; \
      rustup target add "$target"; \
    fi
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc
COPY . .
# No .git in the build context: the commit `tooken --version` prints comes
# from here.
ARG TOOKEN_GIT_COMMIT=unknown
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eu; \
    target="$(cat /rust-target)"; \
    TOOKEN_GIT_COMMIT="$TOOKEN_GIT_COMMIT" \
      cargo build --locked --profile dist -p tooken --target "$target"; \
    install -D -m 0755 "target/$target/dist/tooken" /out/usr/local/bin/tooken; \
    install -d -m 0700 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/tooken /usr/local/bin/tooken
COPY --from=build --chown=65532:65532 /out/data /data
ENV TOOKEN_LISTEN=0.0.0.0:7878 \
    TOOKEN_DATABASE_URL=sqlite:///data/tooken.db
WORKDIR /data
VOLUME ["/data"]
USER 65532:65532
EXPOSE 7878
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/tooken", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/tooken"]
CMD ["serve"]
