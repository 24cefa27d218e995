//! Thread pools for compute: thread count and flushing of subnormal floats.

use crate::error::TrainError;

/// Sets the FTZ (flush-to-zero) and DAZ (denormals-are-zero) bits of this thread's MXCSR, so
/// subnormal floats are treated as 0. With the paper's initialization (conv1 std 1e-4) products
/// become subnormal and x86 slows down by ~40× without this. No effect on other targets.
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code, deprecated)]
    // SAFETY: reading and writing MXCSR only changes this thread's float rounding/denormal
    // mode; no memory is accessed. `_mm_setcsr` is deprecated in favour of inline asm, which
    // would need unsafe too.
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

/// A rayon pool with `threads` threads (0: one per core) whose threads flush denormals when
/// `ftz` is set, and only then. `install` runs its closure on one of the pool's threads, so
/// everything run through the pool has the same mode: do not call [`flush_denormals`] inside it
/// (with `ftz` off, that one thread would flush and the others not, and results would depend
/// on which thread took which work).
///
/// # Errors
/// [`TrainError::Config`] for field `threads` (the `--threads` flag) above
/// [`MAX_THREADS`](crate::train::MAX_THREADS), or if rayon cannot start the pool.
pub fn compute_pool(threads: usize, ftz: bool) -> Result<rayon::ThreadPool, TrainError> {
    crate::train::check_threads(threads)?;
    let mut b = rayon::ThreadPoolBuilder::new().num_threads(threads);
    if ftz {
        b = b.start_handler(|_| flush_denormals());
    }
    b.build().map_err(|e| TrainError::Config { field: "threads".into(), reason: e.to_string() })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// This thread's FTZ and DAZ bits.
    fn ftz_bits() -> u32 {
        #[allow(unsafe_code, deprecated)]
        // SAFETY: reading MXCSR has no side effects.
        unsafe {
            std::arch::x86_64::_mm_getcsr() & 0x8040
        }
    }

    /// Every thread of the pool, and the closure `install` runs, has the mode asked for: all
    /// flush with `ftz`, none without.
    #[test]
    fn every_pool_thread_has_the_mode_asked_for() {
        for (ftz, want) in [(false, 0), (true, 0x8040)] {
            let pool = compute_pool(3, ftz).expect("a pool of 3 threads");
            assert_eq!(pool.install(ftz_bits), want, "install, ftz = {ftz}");
            assert_eq!(pool.broadcast(|_| ftz_bits()), vec![want; 3], "workers, ftz = {ftz}");
        }
    }
}
