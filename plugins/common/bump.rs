//! The bump allocator of the first-party Rust plugins (wasm32 only). Each
//! plugin compiles this file as a module of its own (`#[path]`); it is not
//! a crate because `cargo xtask plugins` builds every crate under
//! `plugins/` as a plugin.
//!
//! Every call runs in a fresh instance whose memory is thrown away
//! afterwards, so a general-purpose allocator's bookkeeping (free lists,
//! headers, its own start-up in every instance) is wasted work: bumping a
//! pointer made a warm render of render-template ~7% cheaper than the
//! C library's `malloc` (interleaved A/B), and it is what lets policy-rules
//! go without `std`. The price is that freed memory is not reused, except
//! for the most recent block (which covers a growing `Vec` or `String`
//! built last): a ~3 MiB render needs 16-24 MiB instead of 8-16 MiB
//! (tests/tests/first_party.rs), well within the default 64 MiB limit.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

/// A value shared by the instance's one thread. A component instance never
/// runs code on two threads (neither wasm32 target has threads here), so
/// nothing can observe it from elsewhere.
pub(crate) struct OneThread<T>(pub(crate) T);

// SAFETY: see `OneThread`: there is no second thread on this target.
unsafe impl<T> Sync for OneThread<T> {}

/// WebAssembly page size.
const PAGE: usize = 65536;
/// Pages the heap grows by at least, so that a growing vector does not ask
/// the host for memory on every doubling.
const MIN_GROW_PAGES: usize = 4;

/// The global allocator: bumps a pointer through chunks of linear memory
/// that it grew itself. It never touches memory it did not grow (not even
/// the slack between `__heap_base` and the initial memory size), so another
/// allocator linked into the module (wasi-libc's `malloc` on wasm32-wasip2
/// starts at `__heap_base`) can never be handed the same bytes. Only the
/// most recent block is freed or resized in place.
pub(crate) struct Bump {
    /// First free address in the current chunk.
    next: Cell<usize>,
    /// End of the current chunk (exclusive); 0 before the first growth.
    end: Cell<usize>,
    /// Start of the most recent block.
    last: Cell<usize>,
}

#[global_allocator]
pub(crate) static ALLOCATOR: OneThread<Bump> = OneThread(Bump {
    next: Cell::new(0),
    end: Cell::new(0),
    last: Cell::new(0),
});

impl Bump {
    /// `[start, end)` for `size` bytes aligned to `align` in the current
    /// chunk, if they fit.
    fn fit(&self, size: usize, align: usize) -> Option<(usize, usize)> {
        let start = self.next.get().checked_next_multiple_of(align)?;
        let end = start.checked_add(size)?;
        (end <= self.end.get()).then_some((start, end))
    }

    /// Grow memory by enough pages for `bytes` more (at least
    /// `MIN_GROW_PAGES` when the host allows). The new pages continue the
    /// current chunk when they follow it, and start a new one otherwise.
    fn grow(&self, bytes: usize) -> bool {
        let needed = bytes.div_ceil(PAGE);
        for pages in [needed.max(MIN_GROW_PAGES), needed] {
            let old = core::arch::wasm32::memory_grow(0, pages);
            if old == usize::MAX {
                continue;
            }
            // A memory of the full 4 GiB would overflow 32-bit `usize`.
            let (Some(start), Some(len)) = (old.checked_mul(PAGE), pages.checked_mul(PAGE)) else {
                return false;
            };
            let Some(end) = start.checked_add(len) else {
                return false;
            };
            if start != self.end.get() {
                self.next.set(start);
            }
            self.end.set(end);
            return true;
        }
        false
    }

    fn is_last(&self, ptr: *mut u8, size: usize) -> bool {
        ptr as usize == self.last.get() && ptr as usize + size == self.next.get()
    }
}

// SAFETY: `alloc` hands out disjoint blocks inside chunks of linear memory
// that `grow` obtained from `memory.grow` (fresh pages nothing else owns),
// aligned as asked and checked against overflow; `dealloc` and `realloc`
// only move `next` back or forth for the block that ends at it, within
// its chunk.
unsafe impl GlobalAlloc for OneThread<Bump> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let bump = &self.0;
        let fitted = bump.fit(layout.size(), layout.align()).or_else(|| {
            // Room for the block wherever the new pages land, aligned.
            let bytes = layout.size().checked_add(layout.align())?;
            if bump.grow(bytes) {
                bump.fit(layout.size(), layout.align())
            } else {
                None
            }
        });
        let Some((start, end)) = fitted else {
            return core::ptr::null_mut();
        };
        bump.last.set(start);
        bump.next.set(end);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let bump = &self.0;
        if bump.is_last(ptr, layout.size()) {
            bump.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let bump = &self.0;
        if bump.is_last(ptr, layout.size()) {
            let Some(end) = (ptr as usize).checked_add(new_size) else {
                return core::ptr::null_mut();
            };
            // In place when the chunk has room, or when growing memory
            // extends this very chunk.
            let chunk_end = bump.end.get();
            let in_place = end <= chunk_end
                || (bump.grow(end - chunk_end)
                    // `grow` moves `next` only when it starts a new chunk.
                    && bump.next.get() == ptr as usize + layout.size()
                    && end <= bump.end.get());
            if in_place {
                bump.next.set(end);
                return ptr;
            }
        }
        // SAFETY: the caller's contract for `realloc` (a valid `layout`,
        // non-zero `new_size` that does not overflow when aligned) is the
        // one `alloc` needs; the old block stays valid for the copy.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            }
            new
        }
    }
}
