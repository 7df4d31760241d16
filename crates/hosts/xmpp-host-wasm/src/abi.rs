//! The exported C ABI: `xw_*` functions over one global [`Module`].
//!
//! This is the only module allowed `unsafe_code`, and only for `#[unsafe(no_mangle)]`, which
//! the lint counts as unsafe because two exported symbols with one name would be undefined
//! behaviour at link time. No function here dereferences a pointer: the two it returns point
//! into buffers the module owns, which the caller reads or writes between calls.
//!
//! All numbers are `u32`/`i32` except times, which are `u64` milliseconds (`BigInt` in
//! JavaScript). Negative results are [`HostError::code`](crate::HostError::code)s; the text is
//! available through [`xw_last_error`].
#![allow(unsafe_code)]

use std::sync::{Mutex, PoisonError};

use crate::module::Module;

/// The module's state. WebAssembly instances are single-threaded, so the lock never waits;
/// it exists because a `static` must be `Sync`.
static MODULE: Mutex<Module> = Mutex::new(Module::new());

fn with<T>(f: impl FnOnce(&mut Module) -> T) -> T {
    // A panic aborts on wasm32-unknown-unknown; natively a poisoned lock still holds a
    // consistent table (every method leaves it valid), so keep going.
    let mut module = MODULE.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut module)
}

/// Resize the input buffer to `len` bytes and return its address (null above
/// [`MAX_INPUT`](crate::MAX_INPUT)). Write the data there, then make the call that reads it.
/// The address is valid until the next `xw_` call.
// SAFETY: `xw_input` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_input(len: u32) -> *mut u8 {
    with(|m| {
        m.input_buffer(len)
            .map_or(core::ptr::null_mut(), <[u8]>::as_mut_ptr)
    })
}

/// Address of the output buffer filled by the last `xw_take_*` or `xw_last_error` call (its
/// length was that call's result). Valid until the next `xw_` call.
// SAFETY: `xw_output` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_output() -> *const u8 {
    with(|m| m.output().as_ptr())
}

/// A client from the setup text in the input buffer; its handle (> 0) or negative.
// SAFETY: `xw_client_new` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_client_new(seed: u64, len: u32) -> i32 {
    with(|m| m.client_new(seed, len))
}

/// A server from the setup text in the input buffer; its handle (> 0) or negative.
// SAFETY: `xw_server_new` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_server_new(seed: u64, len: u32) -> i32 {
    with(|m| m.server_new(seed, len))
}

/// Drop a machine.
// SAFETY: `xw_destroy` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_destroy(handle: u32) -> i32 {
    with(|m| m.destroy(handle))
}

/// Open the stream on a plain transport.
// SAFETY: `xw_start` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_start(handle: u32, now: u64) -> i32 {
    with(|m| m.start(handle, now))
}

/// Open the stream on a transport that is already TLS; binding as for `xw_tls_established`.
// SAFETY: `xw_start_direct_tls` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_start_direct_tls(handle: u32, now: u64, kind: u32, len: u32) -> i32 {
    with(|m| m.start_direct_tls(handle, now, kind, len))
}

/// Feed `len` bytes from the input buffer.
// SAFETY: `xw_feed` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_feed(handle: u32, now: u64, len: u32) -> i32 {
    with(|m| m.feed(handle, now, len))
}

/// Fire due timers.
// SAFETY: `xw_timeout` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_timeout(handle: u32, now: u64) -> i32 {
    with(|m| m.timeout(handle, now))
}

/// The next deadline (ms), or -1.
// SAFETY: `xw_poll_timeout` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_poll_timeout(handle: u32) -> i64 {
    with(|m| m.poll_timeout(handle))
}

/// TLS is up; `kind` names the binding type of the `len` bytes in the input buffer.
// SAFETY: `xw_tls_established` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_tls_established(handle: u32, now: u64, kind: u32, len: u32) -> i32 {
    with(|m| m.tls_established(handle, now, kind, len))
}

/// Send the stanza whose XML is the `len` bytes in the input buffer.
// SAFETY: `xw_send` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_send(handle: u32, now: u64, len: u32) -> i32 {
    with(|m| m.send(handle, now, len))
}

/// Begin the closing handshake.
// SAFETY: `xw_close` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_close(handle: u32, now: u64) -> i32 {
    with(|m| m.close(handle, now))
}

/// The transport ended.
// SAFETY: `xw_transport_closed` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_transport_closed(handle: u32, now: u64) -> i32 {
    with(|m| m.transport_closed(handle, now))
}

/// 1 if the stream is over, 0 if not.
// SAFETY: `xw_is_closed` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_is_closed(handle: u32) -> i32 {
    with(|m| m.is_closed(handle))
}

/// Move pending transmissions to the output buffer; their length.
// SAFETY: `xw_take_bytes` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_take_bytes(handle: u32) -> i32 {
    with(|m| m.take_bytes(handle))
}

/// Move pending events (JSON array) to the output buffer; its length.
// SAFETY: `xw_take_events` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_take_events(handle: u32) -> i32 {
    with(|m| m.take_events(handle))
}

/// Copy the last error's text to the output buffer; its length.
// SAFETY: `xw_last_error` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_last_error() -> i32 {
    with(Module::last_error)
}

/// Replay the transcript in the input buffer as `role` (0 client, 1 server).
// SAFETY: `xw_replay` is a unique name in this crate and its dependencies.
#[unsafe(no_mangle)]
pub extern "C" fn xw_replay(role: u32, len: u32) -> i32 {
    with(|m| m.replay(role, len))
}
