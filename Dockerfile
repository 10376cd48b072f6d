FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y cmake libcurl4-openssl-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p confab

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y ca-certificates curl libcurl4 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/confab /usr/local/bin/confab
ENTRYPOINT ["confab"]
