//! The example client's command line: runs the tests in `examples/client.rs`, beside its
//! parser. (An example's own tests need `test = true`, and then `cargo test` stops building
//! the plain example binary that `interop_client.rs` runs.)

#[path = "../examples/client.rs"]
#[allow(dead_code)]
mod client;
