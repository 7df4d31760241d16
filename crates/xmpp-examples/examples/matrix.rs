//! Prints the interop matrix the last interop run wrote (see `xmpp_examples::matrix`).
//!
//! `cargo run -p xmpp-examples --example matrix`
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout
)]

fn main() {
    let path = xmpp_examples::matrix::path();
    match std::fs::read_to_string(&path) {
        Ok(rows) => print!("{}", xmpp_examples::matrix::render(&rows)),
        Err(e) => {
            eprintln!(
                "{}: {e}\nrun the interop tests first: XMPP_INTEROP=require cargo test -p xmpp-examples --test interop_client",
                path.display()
            );
            std::process::exit(1);
        }
    }
}
