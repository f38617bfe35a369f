#!/usr/bin/env bash
# Replays every fuzz corpus and regression input (fuzz/corpus/<target>/,
# fuzz/regressions/<target>/) through its target, without fuzzing.
#
# Default: a plain `cargo test` of the fuzz crate (fuzz/tests/replay.rs calls
# the same target bodies as the libFuzzer binaries). Stable toolchain, no
# sanitizer, no cargo-fuzz; it shares the workspace's target directory, so
# CI reuses what `cargo test --workspace` already built.
#
# FUZZ_REPLAY=libfuzzer: instead replays through the cargo-fuzz binaries
# (release, AddressSanitizer, RUSTC_BOOTSTRAP=1 for the nightly flags),
# installing cargo-fuzz if missing. Slower to build (about 6 minutes cold
# on 2 cores), closer to a fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(api_json chat_request email_parse form_submission smtp_session twilio_params whatsapp_webhook)

if [ "${FUZZ_REPLAY:-test}" = libfuzzer ]; then
  if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
  fi
  cd fuzz
  for t in "${TARGETS[@]}"; do
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "corpus/$t" "regressions/$t" -- -runs=0
  done
else
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" \
    cargo test --manifest-path fuzz/Cargo.toml --locked --no-default-features --test replay -- --nocapture
fi
