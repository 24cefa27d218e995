//! The one SGEMM every tile and layer calls: `C ← β·C + α·A·B` on ndarray views.
//!
//! Backed by the [`gemm`](https://docs.rs/gemm) crate, which picks AVX-512, AVX2+FMA, NEON or a
//! portable kernel at run time (no `target-cpu` flags needed) and splits large products over
//! the rayon pool. On this project's machine it beats `ndarray`'s `matrixmultiply` backend by
//! 1.3–1.5× per thread on the tile shapes of the paper's network (`docs/performance.md`), and,
//! unlike it, threads a single large product — which a layer with one tile needs.
//!
//! Determinism: the product's blocking along the shared dimension depends only on the shapes
//! and the CPU's cache sizes, never on the number of threads (threads split rows and columns of
//! C), so results are bit-identical for any rayon pool size on a given machine.

use ndarray::{ArrayView2, ArrayViewMut2};

/// Products below this many multiply-adds run on the calling thread. The conv layers already
/// run their tiles' products in parallel, and splitting each small product again (conv1's
/// tiles: 640×76×32 ≈ 1.6 M) only adds scheduling; a layer with one large tile still gets
/// every thread. Results do not depend on it (see the module docs).
const PARALLEL_MIN_MACS: usize = 4 << 20;

fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m.saturating_mul(n).saturating_mul(k) < PARALLEL_MIN_MACS {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(0)
    }
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
    let [a_rs, a_cs] = [a.strides()[0], a.strides()[1]];
    let [b_rs, b_cs] = [b.strides()[0], b.strides()[1]];
    let [c_rs, c_cs] = [c.strides()[0], c.strides()[1]];
    let c_ptr = c.as_mut_ptr();
    // SAFETY: the three pointers address the first logical element of views whose shapes were
    // checked above to be [m, k], [k, n] and [m, n], and whose strides (in elements, possibly
    // negative) are passed unchanged, so every element gemm reads or writes lies inside its
    // view. `c` is borrowed mutably, so it cannot alias `a` or `b`. `read_dst = beta != 0`
    // keeps gemm from reading `c` when it must only be written.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c_ptr,
            c_cs,
            c_rs,
            beta != 0.0,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism(m, n, k),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

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
                    let mut c = c0.clone();
                    sgemm(alpha, a, bv, beta, &mut c.view_mut());
                    for ((x, y), t) in c.iter().zip(&want).zip(&tol) {
                        let err = (f64::from(*x) - y).abs();
                        assert!(err <= *t, "({m},{k},{n}) α {alpha} β {beta}: {x} vs {y}, error {err} > bound {t}");
                    }
                }
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
}
