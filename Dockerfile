# syntax=docker/dockerfile:1
# The confd image: a release binary, its runtime libraries and CA certificates, run as a non-root
# user (65532, the distroless images' "nonroot"). The build context is dist/, which holds the binaries
# (npm run build -- --target linux-x64 …): nothing else of the tree goes into the image.
#
#   docker build -f Dockerfile -t confd dist/                              glibc (distroless cc)
#   docker build -f Dockerfile --target musl -t confd:alpine dist/        musl (Alpine + libstdc++)
#   docker build -f Dockerfile --platform linux/arm64 --build-arg ARCH=arm64 -t confd:arm64 dist/
#
# VERSION is package.json's version; ARCH is x64 (default) or arm64. See docs/building.md.

ARG VERSION=0.1.0
ARG ARCH=x64

# Alpine: the musl binary needs musl's libstdc++ (which brings libgcc).
FROM alpine:3.20 AS musl
ARG VERSION
ARG ARCH
RUN apk add --no-cache ca-certificates libstdc++ \
 && adduser -D -H -u 65532 -s /sbin/nologin nonroot
COPY --chmod=0755 confd-${VERSION}-linux-${ARCH}-musl /confd
USER 65532:65532
ENTRYPOINT ["/confd"]

# Distroless cc: glibc, the C/C++ runtime libraries, CA certificates, passwd/group with nonroot, and
# no shell. Last, so that it is what a plain `docker build` makes.
FROM gcr.io/distroless/cc-debian12:nonroot AS glibc
ARG VERSION
ARG ARCH
COPY --chmod=0755 confd-${VERSION}-linux-${ARCH} /confd
USER 65532:65532
ENTRYPOINT ["/confd"]
