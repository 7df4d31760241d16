#![no_main]
// Placeholder until the crate under test lands; replaced by the real target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data;
});
