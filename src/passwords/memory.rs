//! argon2's working memory, kept between password checks.
//!
//! An argon2id check at the default cost fills 19 MiB. Allocated anew for
//! each login, that memory comes back from the kernel page by page (about
//! 4,900 page faults, and the zeroing `calloc` does) and goes back to it
//! afterwards: a third again on top of the hash itself. So a block, once
//! made, is kept for the next check, at most one per hashing worker (they
//! are the only ones using it), and given back after `IDLE` without use so
//! a service that nobody logs into stays small.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Block;

/// How long an unused block is kept.
pub const IDLE: Duration = Duration::from_secs(10);

struct Slab {
    blocks: Box<[Block]>,
    last_used: Instant,
}

/// The blocks not in use right now.
#[derive(Default)]
pub struct Arena {
    free: Mutex<Vec<Slab>>,
}

impl Arena {
    /// Runs `f` with at least `len` blocks (their content is whatever the
    /// last check left: argon2 writes every block before it reads it).
    pub fn with<T>(&self, len: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let taken = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            free.iter()
                .position(|s| s.blocks.len() >= len)
                .map(|i| free.swap_remove(i))
        };
        let mut slab = taken.unwrap_or_else(|| Slab {
            blocks: vec![Block::default(); len].into_boxed_slice(),
            last_used: Instant::now(),
        });
        let out = f(&mut slab.blocks[..len]);
        slab.last_used = Instant::now();
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slab);
        out
    }

    /// Gives back the blocks unused for `idle`, and the allocator's free
    /// memory with them; returns how many blocks were released.
    pub fn release_idle(&self, idle: Duration) -> usize {
        let released: Vec<Slab> = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            let (old, kept) = std::mem::take(&mut *free)
                .into_iter()
                .partition(|s| s.last_used.elapsed() >= idle);
            *free = kept;
            old
        };
        let n = released.len();
        drop(released);
        if n > 0 {
            trim_heap();
        }
        n
    }

    /// Blocks kept, unused, right now.
    #[cfg(test)]
    pub fn kept(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The `tessera` binary keeps blocks this large mmap'd (`main` fixes
/// glibc's threshold), so dropping one unmaps it; with glibc's adaptive
/// threshold (the library used elsewhere) a freed block stays in the heap
/// until trimmed.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // touches no memory that is in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_reused_then_released_when_idle() {
        let arena = Arena::default();
        let first = arena.with(8, |b| b.as_ptr() as usize);
        assert_eq!(arena.kept(), 1);
        let second = arena.with(4, |b| {
            assert_eq!(b.len(), 4);
            b.as_ptr() as usize
        });
        assert_eq!(first, second, "a larger block serves a smaller check");
        assert_eq!(arena.release_idle(Duration::from_secs(3600)), 0);
        assert_eq!(arena.kept(), 1);
        assert_eq!(arena.release_idle(Duration::ZERO), 1);
        assert_eq!(arena.kept(), 0);
    }

    #[test]
    fn concurrent_checks_get_their_own_blocks() {
        let arena = Arena::default();
        let inner = arena.with(4, |outer| {
            let o = outer.as_ptr() as usize;
            arena.with(4, |inner| (o, inner.as_ptr() as usize))
        });
        assert_ne!(inner.0, inner.1);
        assert_eq!(arena.kept(), 2);
    }
}
