# The nightly job in a container: a static (musl) binary on Alpine with the CA certificates,
# run as an unprivileged user.
#   docker build --build-arg COMMIT=$(git rev-parse --short HEAD) -t drata-svcacct .
#   docker run --rm -v "$PWD:/work" -v /etc/drata/key:/run/secrets/drata_key:ro \
#     drata-svcacct apply decisions.csv --token-file /run/secrets/drata_key
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
