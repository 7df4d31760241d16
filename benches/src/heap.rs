//! Heap counting shared by the benches that print memory figures (`stream`, `sm`): each
//! bench binary installs its own `stats_alloc` global allocator and hands it here.

use std::alloc::System;
use std::hint::black_box;

use stats_alloc::{Region, StatsAlloc};

/// Net heap bytes still held per result after `make` ran `n` times and its results were kept,
/// counted on `alloc` (the bench's global allocator). `stats_alloc` already counts a
/// `realloc`'s growth in `bytes_allocated` and its shrinking in `bytes_deallocated`.
pub fn retained<T>(
    alloc: &'static StatsAlloc<System>,
    n: usize,
    mut make: impl FnMut() -> T,
) -> usize {
    let mut kept = Vec::with_capacity(n);
    let region = Region::new(alloc);
    for _ in 0..n {
        kept.push(make());
    }
    let stats = region.change();
    black_box(&kept);
    stats
        .bytes_allocated
        .saturating_sub(stats.bytes_deallocated)
        / n.max(1)
}
