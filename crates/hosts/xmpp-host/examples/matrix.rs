//! Prints the interop matrix the last interop run wrote (see `xmpp_host::matrix`).
//!
//! `cargo run -p xmpp-host --example matrix`
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout
)]

use clap::Parser;

/// Prints the interop matrix the last interop run wrote (see `xmpp_host::matrix`).
#[derive(Parser)]
#[command(name = "matrix", version)]
struct Cli {}

fn main() {
    Cli::parse();
    let path = xmpp_host::matrix::path();
    match std::fs::read_to_string(&path) {
        Ok(rows) => print!("{}", xmpp_host::matrix::render(&rows)),
        Err(e) => {
            eprintln!(
                "{}: {e}\nrun the interop tests first: XMPP_INTEROP=require cargo test -p xmpp-host --test interop_client",
                path.display()
            );
            std::process::exit(1);
        }
    }
}
