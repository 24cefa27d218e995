//! Max and average pooling of one output row at stride 2, sixteen outputs at a time on
//! AVX-512.
//!
//! Lane `l` of a vector holds output `ox₀ + l`; each tap (yy, dx) of the window reads its
//! pixels at columns `2(ox₀ + l) + dx` as the even elements of two consecutive loads (one
//! permute), and lanes whose window is clipped at the right edge of the plane mask that tap
//! out. Every lane runs the scalar loop's operations in the scalar loop's order (rows, then
//! columns): for max pooling the compare-and-select (a strictly greater value wins, so the
//! first maximum is kept and NaN never wins), for average pooling the sum from +0 and one
//! division by the window's size. So values and argmax indices are the same bits as the scalar
//! loop's.

/// Writes the max pooling of one output row: outputs `0..y_row.len()`, each over input rows
/// `rows` and columns `2·ox .. min(2·ox + k, w)` of `plane` (`w` wide), their values into
/// `y_row` and their argmax plane indices into `pick_row`. Returns false, having written
/// nothing, where the CPU lacks AVX-512F or the plane is too large for 32-bit indices.
///
/// # Panics
/// If `y_row` and `pick_row` differ in length, or a window reads outside `plane`.
pub(super) fn max_row_stride2(
    plane: &[f32],
    w: usize,
    rows: std::ops::Range<usize>,
    k: usize,
    y_row: &mut [f32],
    pick_row: &mut [u32],
) -> bool {
    assert_eq!(y_row.len(), pick_row.len(), "max pooling row: outputs and indices");
    row_stride2::<true, false>(plane, w, rows, k, y_row, pick_row)
}

/// [`max_row_stride2`] for average pooling: each output is its window's sum, in row-major
/// order from +0, divided by the (clipped) window's pixel count.
///
/// # Panics
/// If a window reads outside `plane`.
pub(super) fn avg_row_stride2(
    plane: &[f32],
    w: usize,
    rows: std::ops::Range<usize>,
    k: usize,
    y_row: &mut [f32],
) -> bool {
    row_stride2::<false, true>(plane, w, rows, k, y_row, &mut [])
}

/// [`avg_row_stride2`] without the division: each window's sum, in row-major order from +0.
///
/// # Panics
/// If a window reads outside `plane`.
pub(super) fn sum_row_stride2(
    plane: &[f32],
    w: usize,
    rows: std::ops::Range<usize>,
    k: usize,
    y_row: &mut [f32],
) -> bool {
    row_stride2::<false, false>(plane, w, rows, k, y_row, &mut [])
}

/// The shared entry: checks, then the AVX-512 loop where the CPU has it.
fn row_stride2<const MAX: bool, const DIVIDE: bool>(
    plane: &[f32],
    w: usize,
    rows: std::ops::Range<usize>,
    k: usize,
    y_row: &mut [f32],
    pick_row: &mut [u32],
) -> bool {
    assert!(rows.end * w <= plane.len(), "pooling row: rows {rows:?} of width {w} beyond the plane");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && plane.len() < i32::MAX as usize {
        // SAFETY: the CPU has AVX-512F (checked just above); the function is safe code.
        #[allow(unsafe_code)]
        unsafe {
            avx512::<MAX, DIVIDE>(plane, w, rows, k, y_row, pick_row)
        };
        return true;
    }
    let _ = (plane, w, rows, k, y_row, pick_row);
    false
}

/// The lanes `0..n.min(16)`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first(n: usize) -> u16 {
    if n >= 16 { u16::MAX } else { ((1u32 << n) - 1) as u16 }
}

/// The row loop; `pick_row` is written only for max pooling (`MAX`), where it is as long as
/// `y_row`; otherwise the sums, divided by the windows' sizes where `DIVIDE`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512<const MAX: bool, const DIVIDE: bool>(
    plane: &[f32],
    w: usize,
    rows: std::ops::Range<usize>,
    k: usize,
    y_row: &mut [f32],
    pick_row: &mut [u32],
) {
    use std::arch::x86_64::{
        _CMP_GT_OQ, _mm512_add_epi32, _mm512_cvtepi32_ps, _mm512_div_ps, _mm512_mask_add_ps, _mm512_mask_cmp_ps_mask,
        _mm512_mask_mov_epi32, _mm512_mask_mov_ps, _mm512_mask_storeu_epi32, _mm512_mask_storeu_ps,
        _mm512_maskz_loadu_ps, _mm512_min_epi32, _mm512_permutex2var_ps, _mm512_set1_epi32, _mm512_set1_ps,
        _mm512_setr_epi32, _mm512_setzero_ps, _mm512_sub_epi32,
    };
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let ow = y_row.len();
    for ox0 in (0..ow).step_by(16) {
        let lanes = first(ow - ox0);
        // Max: the best value and its index, first the window's first pixel; average: the sum.
        let mut best = if MAX { _mm512_set1_ps(f32::NEG_INFINITY) } else { _mm512_setzero_ps() };
        let mut best_i = _mm512_add_epi32(_mm512_set1_epi32((rows.start * w + 2 * ox0) as i32), evens);
        for yy in rows.clone() {
            let row = &plane[yy * w..(yy + 1) * w];
            for dx in 0..k {
                let start = 2 * ox0 + dx;
                if start >= w {
                    break;
                }
                // Lane l reads column start + 2l: valid while < w.
                let avail = w - start;
                let valid = lanes & first(avail.div_ceil(2));
                // SAFETY: the masks cover `min(16, avail)` and `min(16, avail − 16)` elements
                // from `start` and `start + 16`, all inside `row` (masked-off lanes are not
                // read).
                #[allow(unsafe_code)]
                let (a, b) = unsafe {
                    let p = row.as_ptr().add(start);
                    let b = if avail > 16 {
                        _mm512_maskz_loadu_ps(first(avail - 16), p.add(16))
                    } else {
                        _mm512_setzero_ps()
                    };
                    (_mm512_maskz_loadu_ps(first(avail), p), b)
                };
                let v = _mm512_permutex2var_ps(a, evens, b);
                if MAX {
                    let idx = _mm512_add_epi32(_mm512_set1_epi32((yy * w + start) as i32), evens);
                    let gt = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(valid, v, best);
                    best = _mm512_mask_mov_ps(best, gt, v);
                    best_i = _mm512_mask_mov_epi32(best_i, gt, idx);
                } else {
                    best = _mm512_mask_add_ps(best, valid, best, v);
                }
            }
        }
        if !MAX && DIVIDE {
            // The window's pixel count: rows × min(k, w − 2·ox) columns (≥ 1 for every output
            // lane: its window starts inside the plane), converted exactly.
            let ox = _mm512_add_epi32(_mm512_set1_epi32((2 * ox0) as i32), evens);
            let cols = _mm512_min_epi32(_mm512_set1_epi32(k as i32), _mm512_sub_epi32(_mm512_set1_epi32(w as i32), ox));
            let rows_n = _mm512_set1_ps(rows.len() as f32);
            let size = std::arch::x86_64::_mm512_mul_ps(rows_n, _mm512_cvtepi32_ps(cols));
            best = _mm512_div_ps(best, size);
        }
        // SAFETY: `lanes` covers outputs ox0..min(ox0 + 16, ow), inside `y_row` and, for max
        // pooling, `pick_row` (as long as `y_row`).
        #[allow(unsafe_code)]
        unsafe {
            _mm512_mask_storeu_ps(y_row.as_mut_ptr().add(ox0), lanes, best);
            if MAX {
                _mm512_mask_storeu_epi32(pick_row.as_mut_ptr().add(ox0).cast(), lanes, best_i);
            }
        }
    }
}

/// The backward pass of average pooling at stride 2 on AVX-512: each output's gradient
/// share v = g/size added to every pixel of its window, row by row. A row's pixels live in
/// three registers per group of sixteen outputs while every tap adds to them, taps in
/// descending column order so that each pixel takes its windows' shares in ascending window
/// order — the scalar loop's order (outputs in row-major order, each spreading over its
/// window), so the same bits.
#[derive(Debug)]
pub(super) struct AvgSpread {
    w: usize,
    ow: usize,
    k: usize,
    /// Per group of sixteen outputs, register j of its pixels and tap dx (`(g·3 + j)·k + dx`):
    /// which output lane each pixel lane takes, and the pixel lanes that take one.
    taps: Vec<([i32; 16], u16)>,
    /// Per group and register j, the pixel lanes inside the row.
    inside: Vec<u16>,
}

impl AvgSpread {
    /// The tables for planes `w` wide, `ow` outputs per row and windows `k` wide; `None` where
    /// the CPU lacks AVX-512F (the caller then runs its scalar loop).
    pub(super) fn new(w: usize, ow: usize, k: usize) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") && k <= 16 {
            let groups = ow.div_ceil(16);
            let (mut taps, mut inside) = (Vec::with_capacity(groups * 3 * k), Vec::with_capacity(groups * 3));
            for g in 0..groups {
                let (ox0, lanes) = (16 * g, (ow - 16 * g).min(16));
                for j in 0..3 {
                    let pixel = |i: usize| 2 * ox0 + 16 * j + i;
                    inside.push((0..16).filter(|&i| pixel(i) < w).fold(0u16, |m, i| m | 1 << i));
                    for dx in 0..k {
                        let (mut idx, mut mask) = ([0i32; 16], 0u16);
                        for (i, slot) in idx.iter_mut().enumerate() {
                            // Pixel lane i is 16j + i from the group's first pixel; output
                            // lane l reaches it at tap dx when 2l + dx = 16j + i.
                            let q = 16 * j + i;
                            if q >= dx && (q - dx) % 2 == 0 && (q - dx) / 2 < lanes && pixel(i) < w {
                                *slot = ((q - dx) / 2) as i32;
                                mask |= 1 << i;
                            }
                        }
                        taps.push((idx, mask));
                    }
                }
            }
            return Some(Self { w, ow, k, taps, inside });
        }
        let _ = (w, ow, k);
        None
    }

    /// Adds the shares `v` (one per output of a row, `ow` of them) to every row of
    /// `rows` of `dplane` (`w` wide), as the scalar loop's spreads of those outputs would.
    ///
    /// # Panics
    /// If `v` does not hold `ow` shares or the rows lie outside `dplane`.
    pub(super) fn add_row(&self, dplane: &mut [f32], rows: std::ops::Range<usize>, v: &[f32]) {
        assert!(v.len() == self.ow && rows.end * self.w <= dplane.len(), "average pooling backward: shapes");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `new` returned `Some` only on a CPU with AVX-512F.
        #[allow(unsafe_code)]
        unsafe {
            self.add_row_avx512(dplane, rows, v)
        };
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn add_row_avx512(&self, dplane: &mut [f32], rows: std::ops::Range<usize>, v: &[f32]) {
        use std::arch::x86_64::{
            __m512, _mm512_loadu_si512, _mm512_mask_add_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
            _mm512_permutexvar_ps,
        };
        let (w, k) = (self.w, self.k);
        for (g, ox0) in (0..self.ow).step_by(16).enumerate() {
            // SAFETY: the mask covers the outputs ox0..min(ox0 + 16, ow), inside `v`.
            #[allow(unsafe_code)]
            let shares = unsafe { _mm512_maskz_loadu_ps(first(self.ow - ox0), v.as_ptr().add(ox0)) };
            let inside = &self.inside[g * 3..g * 3 + 3];
            let taps = &self.taps[g * 3 * k..(g + 1) * 3 * k];
            for yy in rows.clone() {
                let row = &mut dplane[yy * w..(yy + 1) * w];
                let base = 2 * ox0;
                // SAFETY: `inside[j]` covers the pixel lanes of register j that lie in `row`
                // (pixels base + 16j + i < w), so the masked loads and stores stay inside it.
                #[allow(unsafe_code)]
                let mut regs: [__m512; 3] = std::array::from_fn(|j| unsafe {
                    _mm512_maskz_loadu_ps(inside[j], row.as_ptr().wrapping_add(base + 16 * j))
                });
                for dx in (0..k).rev() {
                    for (j, reg) in regs.iter_mut().enumerate() {
                        let (idx, mask) = &taps[j * k + dx];
                        if *mask != 0 {
                            // SAFETY: `idx` is sixteen i32 (64 bytes), what the load reads.
                            #[allow(unsafe_code)]
                            let idx = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
                            *reg = _mm512_mask_add_ps(*reg, *mask, *reg, _mm512_permutexvar_ps(idx, shares));
                        }
                    }
                }
                for (j, reg) in regs.iter().enumerate() {
                    if inside[j] != 0 {
                        // SAFETY: as for the loads.
                        #[allow(unsafe_code)]
                        unsafe {
                            _mm512_mask_storeu_ps(row.as_mut_ptr().add(base + 16 * j), inside[j], *reg)
                        };
                    }
                }
            }
        }
    }
}
