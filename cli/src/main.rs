//! # coffre
//!
//! The reference command-line client, a thin layer over `coffre-sdk`: `coffre init`, `put`, `get`,
//! `ls`, `share`, `log`, `restore` and friends. Not yet built: see the SDK and CLI issue. Until then
//! the README's main command runs the crypto self-demo (`cargo run --release -p coffre-crypto
//! --example selftest`).

#![forbid(unsafe_code)]

fn main() {
    eprintln!(
        "coffre (format v{}): the command-line client is not built yet; \
         run `cargo run --release -p coffre-crypto --example selftest` for the crypto self-demo",
        coffre_sdk::FORMAT_VERSION
    );
    std::process::exit(2);
}
