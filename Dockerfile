# The nightly job in a container: a static (musl) binary on Alpine with the CA certificates,
# run as an unprivileged user (10001 unless told otherwise).
#   docker build --build-arg COMMIT=$(git rev-parse --short HEAD) -t drata-svcacct .
# Run it as the user who owns the key file (mode 0600) and the folder mounted on /work, or
# uid 10001 can read neither the key nor write the report there:
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" \
#     -v ~/.config/drata/key:/run/secrets/drata_key:ro drata-svcacct \
#     apply --rules rules.toml --max-changes 50 --token-file /run/secrets/drata_key \
#     --quiet --report nightly.csv --evidence nightly.xlsx
# The key may come as a Docker secret (/run/secrets/NAME) or in -e DRATA_API_KEY. In
# Kubernetes, mount the secret as a file readable by the pod's user (runAsUser 10001, or
# fsGroup 10001 with defaultMode 0440) and a writable volume on /work.
FROM rust:1-alpine AS build
# ring compiles C against musl's headers.
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
ARG COMMIT=
ENV DRATA_SVCACCT_COMMIT=$COMMIT
RUN cargo build --release --locked \
    && cp target/release/drata-svcacct /drata-svcacct

FROM alpine:3.20
RUN apk add --no-cache ca-certificates \
    && adduser -D -H -u 10001 drata
COPY --from=build /drata-svcacct /usr/local/bin/drata-svcacct
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/drata-svcacct"]
CMD ["--help"]
