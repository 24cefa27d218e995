//! The one SGEMM every tile and layer calls: `C ← β·C + α·A·B` on ndarray views.
//!
//! Backed by [`rten-gemm`](https://docs.rs/rten-gemm), which picks an AVX-512, AVX2+FMA, NEON or
//! portable kernel at run time (no `target-cpu` flags needed) and splits large products over the
//! rayon pool. On this project's machine (AMD EPYC) its AVX-512 kernel runs the tile shapes of
//! the paper's network at 1.7–1.9× the per-thread rate of the `gemm` crate used before (whose
//! AVX-512 kernels need a nightly-only feature, so it ran AVX2 here) and at 1.9–2.7× that of
//! ndarray's `matrixmultiply`; on an Intel Xeon at 1.0–2.0× the `gemm` crate
//! (`cargo bench --bench gemm`, `docs/performance.md`). Products of any size may be split over
//! the calling thread's rayon pool (rten decides from the pool size, not from the product's).
//!
//! Layouts: dense `a` and `b` (row-major or column-major contiguous: arrays and their
//! transposes) are read in place, other views (strided, broadcast, negative strides) through a
//! row-major copy; a row-major contiguous `c` is written in place, a column-major one as
//! `cᵀ = bᵀ·aᵀ`, any other through a copy.
//!
//! Determinism: the product's blocking along the shared dimension depends only on k (blocks of
//! 256), never on the number of threads (threads split rows and columns of C), and every output
//! element is accumulated by one micro-kernel in a fixed order, so results are bit-identical
//! for any rayon pool size on a given machine (and kernel). One-row products, which rten would
//! send down a vector path whose rounding depends on the pool size, are run as two rows.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rten_gemm::{GemmExecutor, GemmInputA, GemmInputB, GemmOptions, PackedBMatrix};
use rten_tensor::Matrix;

thread_local! {
    /// Each thread's executor (the kernel is chosen from the CPU's features; rten's executor is
    /// `Sync` but not `Send`, so it cannot live in a `static`).
    static EXEC: GemmExecutor<f32> = GemmExecutor::default();
}

/// Name of the SGEMM kernel this machine runs (e.g. `x86_64-f32-avx512`), for benches and logs.
pub fn kernel_name() -> String {
    EXEC.with(|e| e.kernel_name().to_owned())
}

/// `v` as an rten matrix without copying, if it is dense: row-major or column-major
/// contiguous, so that the slice spanning its elements holds nothing else. (A slice over a
/// strided view's span would also cover elements that other code may be mutating, e.g. the
/// other half of a `multi_slice_mut` split: such views are copied instead.)
fn as_matrix<'a>(v: &ArrayView2<'a, f32>) -> Option<Matrix<'a, f32>> {
    let (r, c) = v.dim();
    let [rs, cs] = [usize::try_from(v.strides()[0]).ok()?, usize::try_from(v.strides()[1]).ok()?];
    let row_major = (cs == 1 || c == 1) && (rs == c || r == 1);
    let col_major = (rs == 1 || r == 1) && (cs == r || c == 1);
    if !(row_major || col_major) {
        return None;
    }
    // SAFETY: `v` is non-empty (checked by the caller) and dense with non-negative strides, so
    // its r·c elements are exactly `as_ptr()[0..r·c]`, all inside the allocation `v` borrows
    // (shared) for `'a`; the slice covers nothing else and is only read.
    #[allow(unsafe_code)]
    let data = unsafe { std::slice::from_raw_parts(v.as_ptr(), r * c) };
    Matrix::from_slice_with_strides([r, c], data, [rs, cs]).ok()
}

/// A row-major copy (`to_owned` would keep a contiguous view's negative strides).
fn row_major_copy(v: &ArrayView2<'_, f32>) -> Array2<f32> {
    let mut o = Array2::zeros(v.dim());
    o.assign(v);
    o
}

/// `out ← beta·out + alpha·a·b` with `out` row-major contiguous, `[m, n]`.
fn gemm_row_major(alpha: f32, a: &ArrayView2<'_, f32>, b: &ArrayView2<'_, f32>, beta: f32, out: &mut [f32]) {
    if a.nrows() == 1 {
        // rten runs one-row products through a vector path that splits the columns by the
        // number of threads and rounds the last partial block differently (no FMA): results
        // would depend on the pool size. Two identical rows take the general path, whose
        // per-element arithmetic does not depend on the number of rows or threads.
        let n = out.len();
        let mut a2 = Array2::zeros((2, a.ncols()));
        a2.row_mut(0).assign(&a.row(0));
        a2.row_mut(1).assign(&a.row(0));
        let mut out2 = vec![0.0f32; 2 * n];
        if beta != 0.0 {
            out2[..n].copy_from_slice(out);
            out2[n..].copy_from_slice(out);
        }
        gemm_row_major(alpha, &a2.view(), b, beta, &mut out2);
        out.copy_from_slice(&out2[..n]);
        return;
    }
    // Views that are not dense go through a row-major copy.
    let (copy_a, copy_b) =
        (as_matrix(a).is_none().then(|| row_major_copy(a)), as_matrix(b).is_none().then(|| row_major_copy(b)));
    let a = copy_a.as_ref().map_or_else(|| as_matrix(a), |o| as_matrix(&o.view()));
    let b = copy_b.as_ref().map_or_else(|| as_matrix(b), |o| as_matrix(&o.view()));
    let (Some(a), Some(b)) = (a, b) else { unreachable!("a row-major array is dense") };
    let opts = GemmOptions { alpha, beta, ..GemmOptions::default() };
    EXEC.with(|e| e.gemm(out, GemmInputA::Unpacked(a), GemmInputB::Unpacked(b), opts))
        .expect("sgemm: shapes and output length were checked by the caller");
}

/// `c ← beta·c + alpha·a·b` for `a: [m, k]`, `b: [k, n]`, `c: [m, n]`, any strides (including
/// transposed views). With `beta == 0`, `c` is overwritten (NaNs in it do not propagate).
///
/// # Panics
/// If the shapes do not agree; callers check shapes and return typed errors first.
pub fn sgemm(alpha: f32, a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, beta: f32, c: &mut ArrayViewMut2<'_, f32>) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert!(k == k2 && c.dim() == (m, n), "sgemm shapes: a {:?}, b {:?}, c {:?}", a.dim(), b.dim(), c.dim());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if beta == 0.0 {
            c.fill(0.0);
        } else {
            c.mapv_inplace(|v| beta * v);
        }
        return;
    }
    if c.is_standard_layout() {
        let out = c.as_slice_mut().expect("a standard-layout view is contiguous");
        gemm_row_major(alpha, &a, &b, beta, out);
        return;
    }
    let mut ct = c.view_mut().reversed_axes();
    if ct.is_standard_layout() {
        let out = ct.as_slice_mut().expect("a standard-layout view is contiguous");
        gemm_row_major(alpha, &b.t(), &a.t(), beta, out);
        return;
    }
    let mut tmp = if beta == 0.0 { Array2::zeros((m, n)) } else { row_major_copy(&c.view()) };
    let out = tmp.as_slice_mut().expect("a new array is row-major contiguous");
    gemm_row_major(alpha, &a, &b, beta, out);
    c.assign(&tmp);
}

/// A right-hand operand `b: [k, n]` packed once into the kernel's panel layout, for many
/// products with different left-hand operands ([`sgemm_packed`]): the analog MVM multiplies
/// each chunk of vectors by the same weights, and packing them once per call instead of once
/// per chunk saves a seventh of a small tile's MVM time. The products are bit-identical to
/// [`sgemm`]'s (the same kernel, blocking and summation order).
pub struct PackedRhs {
    /// `None` when `b` is empty (rten cannot pack an empty matrix).
    packed: Option<PackedBMatrix<f32>>,
    dim: (usize, usize),
}

impl std::fmt::Debug for PackedRhs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedRhs").field("dim", &self.dim).finish_non_exhaustive()
    }
}

impl PackedRhs {
    /// Packs `b` (any layout; views that are not dense are copied first).
    pub fn new(b: ArrayView2<'_, f32>) -> Self {
        if b.is_empty() {
            return Self { packed: None, dim: b.dim() };
        }
        let copy = as_matrix(&b).is_none().then(|| row_major_copy(&b));
        let m = copy.as_ref().map_or_else(|| as_matrix(&b), |o| as_matrix(&o.view()));
        let Some(m) = m else { unreachable!("a row-major array is dense") };
        Self { packed: Some(EXEC.with(|e| e.prepack_b(m))), dim: b.dim() }
    }

    /// `[k, n]`.
    pub fn dim(&self) -> (usize, usize) {
        self.dim
    }
}

/// [`sgemm`] with a packed right-hand operand: `c ← beta·c + alpha·a·b`.
///
/// # Panics
/// If the shapes do not agree.
pub fn sgemm_packed(alpha: f32, a: ArrayView2<'_, f32>, b: &PackedRhs, beta: f32, c: &mut ArrayViewMut2<'_, f32>) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert!(k == k2 && c.dim() == (m, n), "sgemm shapes: a {:?}, b {:?}, c {:?}", a.dim(), b.dim(), c.dim());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || m == 1 || !c.is_standard_layout() {
        // Rare here (no shared dimension, one row, or a strided output): the general path
        // from a row-major copy of b would need the unpacked matrix, so go through a
        // two-row-or-more row-major temporary of c instead.
        let rows = m.max(2);
        let mut a2 = Array2::zeros((rows, k));
        for r in 0..rows {
            a2.row_mut(r).assign(&a.row(r.min(m - 1)));
        }
        let mut tmp = Array2::<f32>::zeros((rows, n));
        if beta != 0.0 {
            for r in 0..m {
                tmp.row_mut(r).assign(&c.row(r));
            }
        }
        if k == 0 {
            tmp.mapv_inplace(|v| if beta == 0.0 { 0.0 } else { beta * v });
        } else {
            let out = tmp.as_slice_mut().expect("a new array is row-major contiguous");
            packed_row_major(alpha, &a2.view(), b, beta, out);
        }
        c.assign(&tmp.slice(ndarray::s![..m, ..]));
        return;
    }
    let out = c.as_slice_mut().expect("a standard-layout view is contiguous");
    packed_row_major(alpha, &a, b, beta, out);
}

/// `out ← beta·out + alpha·a·b` with `out` row-major `[m, n]`, m ≥ 2, k ≥ 1.
fn packed_row_major(alpha: f32, a: &ArrayView2<'_, f32>, b: &PackedRhs, beta: f32, out: &mut [f32]) {
    let copy_a = as_matrix(a).is_none().then(|| row_major_copy(a));
    let a = copy_a.as_ref().map_or_else(|| as_matrix(a), |o| as_matrix(&o.view()));
    let (Some(a), Some(packed)) = (a, &b.packed) else { unreachable!("a row-major array is dense, b is not empty") };
    let opts = GemmOptions { alpha, beta, ..GemmOptions::default() };
    EXEC.with(|e| e.gemm(out, GemmInputA::Unpacked(a), GemmInputB::Packed(packed), opts))
        .expect("sgemm_packed: shapes were checked by the caller, and b was packed by this machine's kernel");
}

/// `a` in standard (row-major, contiguous) layout, moved when it already is, copied otherwise:
/// restored states may hold arrays in any layout, and the tile's row loops take slices.
pub(crate) fn standard_layout(a: Array2<f32>) -> Array2<f32> {
    if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder, s};

    /// The exact (f64) result and, per element, the worst-case rounding error of any f32
    /// summation order: γ·(|α|·Σ_l |a_il·b_lj| + |β·c_ij|) with γ = (k + 2)·2⁻²⁴ (Higham's bound
    /// for a k-term dot product, plus the scaling and the final addition).
    fn naive(
        alpha: f32,
        a: &ArrayView2<'_, f32>,
        b: &ArrayView2<'_, f32>,
        beta: f32,
        c: &Array2<f32>,
    ) -> [Array2<f64>; 2] {
        let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
        let gamma = (k + 2) as f64 * f64::from(f32::EPSILON) / 2.0;
        let mut want = Array2::zeros((m, n));
        let mut tol = Array2::zeros((m, n));
        for i in 0..m {
            for j in 0..n {
                let terms = (0..k).map(|l| f64::from(a[[i, l]]) * f64::from(b[[l, j]]));
                let (dot, abs) = terms.fold((0.0, 0.0), |(d, s), t: f64| (d + t, s + t.abs()));
                let cb = if beta == 0.0 { 0.0 } else { f64::from(beta) * f64::from(c[[i, j]]) };
                want[[i, j]] = cb + f64::from(alpha) * dot;
                tol[[i, j]] = gamma * (f64::from(alpha).abs() * abs + cb.abs());
            }
        }
        [want, tol]
    }

    /// Products of transposed, strided and reversed views agree with an exact reference within
    /// the worst-case f32 rounding bound of each element.
    #[test]
    fn matches_naive_product_for_any_layout() {
        let f = |r: usize, c: usize, s: f32| Array2::from_shape_fn((r, c), |(i, j)| ((i * 7 + j * 3) as f32 * s).sin());
        for (m, k, n) in [(1, 1, 1), (3, 5, 2), (17, 75, 33), (64, 800, 32), (130, 9, 70)] {
            let a_store = f(k + 2, m * 2, 0.31);
            let b_store = f(n, k, 0.17);
            let a = a_store.slice(s![..k, ..;2]).reversed_axes(); // [m, k], strided, transposed
            let b = b_store.t(); // [k, n], column-major
            let mut b_rev = b_store.t().to_owned();
            b_rev.invert_axis(ndarray::Axis(0));
            for (alpha, beta) in [(1.0, 0.0), (-0.5, 1.0), (2.0, 0.25)] {
                let c0 = f(m, n, 0.05);
                for bv in [b, b_rev.view()] {
                    let [want, tol] = naive(alpha, &a, &bv, beta, &c0);
                    // c row-major, column-major, and strided (every other column of a wider array).
                    let mut c_row = c0.clone();
                    let mut c_col = Array2::zeros((m, n).f());
                    c_col.assign(&c0);
                    let mut c_wide = Array2::zeros((m, 2 * n));
                    c_wide.slice_mut(s![.., ..;2]).assign(&c0);
                    let mut c_rev = Array2::zeros((m, n));
                    c_rev.slice_mut(s![..;-1, ..]).assign(&c0);
                    sgemm(alpha, a, bv, beta, &mut c_row.view_mut());
                    sgemm(alpha, a, bv, beta, &mut c_col.view_mut());
                    sgemm(alpha, a, bv, beta, &mut c_wide.slice_mut(s![.., ..;2]));
                    sgemm(alpha, a, bv, beta, &mut c_rev.slice_mut(s![..;-1, ..]));
                    for c in [c_row.view(), c_col.view(), c_wide.slice(s![.., ..;2]), c_rev.slice(s![..;-1, ..])] {
                        for ((x, y), t) in c.iter().zip(&want).zip(&tol) {
                            let err = (f64::from(*x) - y).abs();
                            assert!(err <= *t, "({m},{k},{n}) α {alpha} β {beta}: {x} vs {y}, error {err} > bound {t}");
                        }
                    }
                }
            }
        }
    }

    /// The same product gives the same bits on pools of 1, 2 and 3 threads, for one-row
    /// products (which rten would split by the thread count), column-major outputs and large
    /// products that rten splits over the threads.
    #[test]
    fn results_do_not_depend_on_the_number_of_threads() {
        let f = |r: usize, c: usize, s: f32| Array2::from_shape_fn((r, c), |(i, j)| ((i * 7 + j * 3) as f32 * s).sin());
        for (m, k, n) in [(1, 32, 801), (1, 75, 200), (2, 32, 801), (640, 75, 32), (300, 300, 300)] {
            let (a, b, c0) = (f(m, k, 0.31), f(k, n, 0.17), f(m, n, 0.05));
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a rayon pool");
                pool.install(|| {
                    let mut c = c0.clone();
                    sgemm(0.5, a.view(), b.view(), 1.0, &mut c.view_mut());
                    let mut ct = Array2::zeros((m, n).f());
                    sgemm(1.0, a.view(), b.view(), 0.0, &mut ct.view_mut());
                    (c, ct)
                })
            };
            let one = run(1);
            for threads in [2, 3] {
                assert!(run(threads) == one, "({m},{k},{n}): {threads} threads differ from 1");
            }
        }
    }

    #[test]
    fn beta_zero_overwrites_nan_and_empty_k_scales() {
        let a = Array2::<f32>::ones((2, 3));
        let b = Array2::<f32>::ones((3, 2));
        let mut c = Array2::from_elem((2, 2), f32::NAN);
        sgemm(1.0, a.view(), b.view(), 0.0, &mut c.view_mut());
        assert_eq!(c, Array2::from_elem((2, 2), 3.0));
        let mut c = Array2::from_elem((2, 2), 4.0);
        sgemm(1.0, Array2::zeros((2, 0)).view(), Array2::zeros((0, 2)).view(), 0.5, &mut c.view_mut());
        assert_eq!(c, Array2::from_elem((2, 2), 2.0));
    }

    /// `sgemm_packed` gives `sgemm`'s bits: one row, many rows, a strided and a column-major
    /// output, β ≠ 0, a transposed and a strided `b`, k = 0 and k beyond one depth block.
    #[test]
    fn packed_rhs_gives_the_same_bits() {
        let mut seed = 1u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / 16_777_216.0 - 0.5
        };
        for (m, k, n) in [(1, 75, 32), (2, 75, 32), (64, 75, 32), (37, 800, 64), (5, 0, 3), (3, 300, 1)] {
            let a = Array2::from_shape_simple_fn((m, k), &mut next);
            let bt = Array2::from_shape_simple_fn((n, k), &mut next);
            let b_big = Array2::from_shape_simple_fn((k, 2 * n), &mut next);
            let c0 = Array2::from_shape_simple_fn((m, n), &mut next);
            for b in [bt.t(), b_big.slice(s![.., ..;2])] {
                let packed = PackedRhs::new(b);
                assert_eq!(packed.dim(), (k, n));
                for beta in [0.0f32, 0.7] {
                    let mut want = c0.clone();
                    sgemm(1.3, a.view(), b, beta, &mut want.view_mut());
                    let mut row_major = c0.clone();
                    sgemm_packed(1.3, a.view(), &packed, beta, &mut row_major.view_mut());
                    let mut col_major = Array2::zeros((m, n).f());
                    col_major.assign(&c0);
                    sgemm_packed(1.3, a.view(), &packed, beta, &mut col_major.view_mut());
                    let mut wide = Array2::zeros((m, 2 * n));
                    wide.slice_mut(s![.., ..;2]).assign(&c0);
                    sgemm_packed(1.3, a.view(), &packed, beta, &mut wide.slice_mut(s![.., ..;2]));
                    for got in [row_major.view(), col_major.view(), wide.slice(s![.., ..;2])] {
                        assert!(
                            got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()),
                            "({m},{k},{n}), beta {beta}"
                        );
                    }
                }
            }
        }
    }
}
