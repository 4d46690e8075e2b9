//! The examples `--help` shows after each command's options.

pub(super) const ORDERS: &str = "\
Examples:
  orders                                  embedded mode on 127.0.0.1:8080 (no DATABASE_URL)
  DATABASE_URL=postgres://postgres@127.0.0.1/test orders migrate
  DATABASE_URL=postgres://postgres@127.0.0.1/test orders
                                          the whole app in one process: HTTP, relay, consumers
  orders token alice --admin              a bearer token for the page or curl
  orders completions bash > /etc/bash_completion.d/orders
  orders man > orders.1";

pub(super) const SERVE: &str = "\
Examples:
  orders serve                            the whole app in one process (either mode)
  orders serve --front --addr 0.0.0.0:8080
                                          HTTP only; run `orders relay` and `orders projections run` apart
  orders serve --chaos 0.2                a fifth of command requests fail with 500 on purpose";

pub(super) const RELAY: &str = "\
Examples:
  orders relay                            publish the store's log to JetStream; run two for failover
  orders relay status                     leader, standbys, checkpoint, lag, what holds the log back
  orders relay reset --to 0/0 --yes       publish everything again (stop every relay first)";

pub(super) const PROJECTIONS: &str = "\
Examples:
  orders projections run                  every read model and the process manager
  orders projections status --json        positions and lag, one JSON object per projection
  orders projections audit orders         compare the read model with the store, stream by stream
  orders projections rebuild orders --yes rebuild from the log into a shadow, then swap it in
  orders projections rebuild --all --yes  rebuild every projection, one after another
  orders projections pause sales          stop taking batches (every process, within a second)
  orders projections resume sales         go on from where it stopped
  orders projections replay orders --since 2026-01-31T12:00:00Z --yes
                                          apply again what was taken in since then (idempotent only)";

pub(super) const PROJECTIONS_RUN: &str = "\
Examples:
  orders projections run                  run them all; start more processes to share partitions
  orders projections run --only sales     one consumer only";

pub(super) const DLQ: &str = "\
Examples:
  orders dlq list --json                  every parked stream and rogue message
  orders dlq retry orders order-<uuid>     apply a parked stream's events again after a fix
  orders dlq skip orders order-<uuid> --yes
                                          give up on them and let the stream go on";

pub(super) const EVENTS: &str = "\
Examples:
  orders events verify                    every stored event through its upcasters and decoder
  orders events verify --json             the report as one JSON object";

pub(super) const STREAM: &str = "\
Examples:
  orders stream show order-<uuid>          a stream's events as stored (exit 3 when it has none)
  orders stream show order-<uuid> --json   one JSON object per event";

pub(super) const MIGRATE: &str = "\
Examples:
  DATABASE_URL=postgres://postgres@127.0.0.1/test orders migrate
  orders migrate --schema shop --jetstream-stream SHOP
  orders migrate --check                  exit 1 and list the pending migrations, if any
  orders migrate --print-sql              the SQL migrate would run, without running it";

pub(super) const SEED: &str = "\
Examples:
  orders seed --orders 500 --concurrency 16
  orders seed --rng-seed 7                the same mix every time";

pub(super) const TOKEN: &str = "\
Examples:
  orders token alice                      valid 30 days, signed with ORDERS_TOKEN_SECRET
  orders token ops --admin --ttl-hours 1  an admin token for the ops endpoints
  orders token ada --tenant acme          a token of a user of the tenant acme";

pub(super) const COMPLETIONS: &str = "\
Examples:
  orders completions bash > ~/.local/share/bash-completion/completions/orders
  orders completions zsh > ~/.zfunc/_orders
  orders completions fish > ~/.config/fish/completions/orders.fish";

pub(super) const MAN: &str = "\
Examples:
  orders man > orders.1 && man ./orders.1";

pub(super) const FORGET: &str = "\
Examples:
  orders forget ada@example.com --yes     erase the customer's delivery contacts for good";
