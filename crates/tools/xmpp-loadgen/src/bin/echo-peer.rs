//! `echo-peer`: the load generator's trivial echo peer on 127.0.0.1, to measure the
//! generator's own ceiling ([`xmpp_loadgen::echo`]). Not an XMPP server: it speaks only what
//! the load generator sends. `compare --servers echo` starts it.
//!
//! `target/release/echo-peer --port 5299 --cert cert.pem --key key.pem`
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use xmpp_loadgen::echo::{EchoConfig, EchoPeer};

/// The load generator's echo peer: logs in every account with one password and routes each
/// chat message to the session its `to` names, found by byte search. Not an XMPP server; a
/// measuring instrument for the load generator's own ceiling. Listens on 127.0.0.1 only.
#[derive(Debug, Parser)]
#[command(name = "echo-peer", version, args_override_self = true)]
struct Cli {
    /// The port on 127.0.0.1 (never anywhere else)
    #[arg(long)]
    port: u16,
    /// PEM certificate chain
    #[arg(long, value_name = "PEMFILE")]
    cert: PathBuf,
    /// PEM private key
    #[arg(long, value_name = "PEMFILE")]
    key: PathBuf,
    /// The XMPP domain
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// The password of every account
    #[arg(long, default_value = "load-test-pw")]
    password: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let read = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let tls = read(&cli.cert).and_then(|cert| {
        let key = read(&cli.key)?;
        xmpp_host::tls::server_config(&cert, &key)
            .map(|(config, _)| config)
            .map_err(|e| e.to_string())
    });
    let tls = match tls {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match xmpp_loadgen::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let config = EchoConfig {
        domain: cli.domain,
        password: cli.password,
    };
    runtime.block_on(async {
        match EchoPeer::bind(cli.port, tls, &config).await {
            Ok(peer) => {
                peer.serve().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["echo-peer", "--port", "5299", "--cert", "c", "--key", "k"])
            .unwrap();
        assert_eq!(cli.port, 5299);
        assert_eq!(cli.domain, "localhost");
        assert_eq!(cli.password, "load-test-pw");
        assert!(Cli::try_parse_from(["echo-peer", "--cert", "c", "--key", "k"]).is_err());
    }
}
