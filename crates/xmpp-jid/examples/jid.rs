//! Parses and enforces each JID given on the command line and prints its parts, or the exact
//! reason it was rejected.
//!
//! ```sh
//! cargo run -p xmpp-jid --example jid -- 'Juliet@Example.COM/balcony'
//! ```
use std::process::ExitCode;

use xmpp_jid::Jid;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: jid <JID>...   e.g. jid 'Juliet@Example.COM/balcony'");
        return ExitCode::from(2);
    }
    for arg in args {
        match Jid::new(&arg) {
            Ok(jid) => {
                println!("{arg:?} -> {jid}");
                println!("  localpart:    {}", jid.node().unwrap_or("(none)"));
                println!("  domainpart:   {}", jid.domain());
                println!("  resourcepart: {}", jid.resource().unwrap_or("(none)"));
                println!("  bare:         {}", jid.to_bare());
            }
            Err(e) => {
                println!("{arg:?} -> error: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
