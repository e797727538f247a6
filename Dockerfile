# The nopii image: one static Go binary on distroless "static", as a non-root
# user. Build it with `make image` (which passes VERSION), or:
#   docker build --build-arg VERSION=$(make -s version) -t ghcr.io/nopii/nopii:$(make -s version) .
# The Helm chart (charts/nopii) runs it with `agent …` or `dashboard …`.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change reuses their layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: a static executable, no libc needed at run time.
RUN CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/nopii/nopii/cmd.version=${VERSION}" \
	-o /out/nopii ./cmd/nopii

# distroless/static: CA certificates, tzdata and /etc/passwd with the
# "nonroot" user (65532), no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="nopii" \
	org.opencontainers.image.description="PII-redacting replication agent for PostgreSQL" \
	org.opencontainers.image.source="https://github.com/nopii/nopii" \
	org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/nopii /usr/local/bin/nopii
USER 65532:65532
# 8080: the agent's /healthz, /readyz and /metrics; 8090: the dashboard.
EXPOSE 8080 8090
ENTRYPOINT ["/usr/local/bin/nopii"]
CMD ["--help"]
