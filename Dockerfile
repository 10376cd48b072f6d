# Confab's image: the `confab` binary on a slim Debian with only the libraries it links (OpenSSL
# for librdkafka's TLS, zlib) and the CA certificates, running as an unprivileged user. Health
# checks use `confab probe URL` (no curl in the image). Build from the repository root:
#   docker build -t confab:dev .
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libcurl4-openssl-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p confab && strip target/release/confab

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/confab --create-home --shell /usr/sbin/nologin confab
COPY --from=build /src/target/release/confab /usr/local/bin/confab
USER 10001:10001
WORKDIR /var/lib/confab
# the embedded mode's data, when the image runs `confab serve` alone
ENV CONFAB_DATA_DIR=/var/lib/confab/data
VOLUME ["/var/lib/confab"]
EXPOSE 8080 8090 9100
ENTRYPOINT ["confab"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
