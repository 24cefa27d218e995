//! Max pooling of one output row at stride 2, sixteen outputs at a time on AVX-512.
//!
//! Lane `l` of a vector holds output `ox₀ + l`; each tap (yy, dx) of the window reads its
//! pixels at columns `2(ox₀ + l) + dx` as the even elements of two consecutive loads (one
//! permute), and lanes whose window is clipped at the right edge of the plane mask that tap
//! out. Every lane runs the scalar loop's compare-and-select in the scalar loop's order (rows,
//! then columns; a strictly greater value wins, so the first maximum is kept and NaN never
//! wins), so values and argmax indices are the same bits as the scalar loop's.

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
    assert!(rows.end * w <= plane.len(), "max pooling row: rows {rows:?} of width {w} beyond the plane");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && plane.len() < i32::MAX as usize {
        // SAFETY: the CPU has AVX-512F (checked just above); the function is safe code.
        #[allow(unsafe_code)]
        unsafe {
            avx512(plane, w, rows, k, y_row, pick_row)
        };
        return true;
    }
    let _ = (plane, w, rows, k);
    false
}

/// The lanes `0..n.min(16)`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first(n: usize) -> u16 {
    if n >= 16 { u16::MAX } else { ((1u32 << n) - 1) as u16 }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512(plane: &[f32], w: usize, rows: std::ops::Range<usize>, k: usize, y_row: &mut [f32], pick_row: &mut [u32]) {
    use std::arch::x86_64::{
        _CMP_GT_OQ, _mm512_add_epi32, _mm512_mask_cmp_ps_mask, _mm512_mask_mov_epi32, _mm512_mask_mov_ps,
        _mm512_mask_storeu_epi32, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_permutex2var_ps,
        _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr_epi32, _mm512_setzero_ps,
    };
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let ow = y_row.len();
    for ox0 in (0..ow).step_by(16) {
        let lanes = first(ow - ox0);
        let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
        // The scalar loop's initial argmax: the window's first pixel.
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
                let idx = _mm512_add_epi32(_mm512_set1_epi32((yy * w + start) as i32), evens);
                let gt = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(valid, v, best);
                best = _mm512_mask_mov_ps(best, gt, v);
                best_i = _mm512_mask_mov_epi32(best_i, gt, idx);
            }
        }
        // SAFETY: `lanes` covers outputs ox0..min(ox0 + 16, ow), inside both rows.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_mask_storeu_ps(y_row.as_mut_ptr().add(ox0), lanes, best);
            _mm512_mask_storeu_epi32(pick_row.as_mut_ptr().add(ox0).cast(), lanes, best_i);
        }
    }
}
