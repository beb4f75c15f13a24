# Tessera: a small runtime image (Debian slim, non-root) built in two stages.
# Build: docker build --network host -t tessera .
# Run:   docker run --network host -v tessera-data:/data tessera

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, from the manifests alone, so this layer is reused as
# long as Cargo.toml / Cargo.lock do not change.
COPY Cargo.toml Cargo.lock ./
COPY entity/Cargo.toml entity/
COPY migration/Cargo.toml migration/
# The manifest declares the benches, so cargo wants their files to exist.
COPY benches benches
RUN mkdir -p src entity/src migration/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs entity/src/lib.rs migration/src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src entity/src migration/src
# Then the sources.
COPY config config
COPY data data
COPY entity entity
COPY migration migration
COPY src src
RUN touch src/main.rs src/lib.rs entity/src/lib.rs migration/src/lib.rs \
 && cargo build --release --locked --bin tessera \
 && strip target/release/tessera

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home tessera \
 && mkdir /data && chown tessera:tessera /data
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
USER tessera
WORKDIR /data
# Listen on every interface inside the container; keep the SQLite file (and
# the generated key beside it) in the volume. Override with TESSERA__... or
# DATABASE_URL=postgres://...
ENV TESSERA__SERVER__HOST=0.0.0.0 \
    DATABASE_URL=sqlite:///data/tessera.db?mode=rwc \
    TESSERA__EMAIL__BACKEND=smtp \
    TESSERA__LOG__FORMAT=json
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["tessera", "healthcheck"]
ENTRYPOINT ["tessera"]
CMD ["serve"]
