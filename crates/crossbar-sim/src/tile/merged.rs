//! The merged pulsed update: all coincidences of one update call applied to a device at once.
//!
//! For a device whose pulse step does not depend on the weight (constant step, see
//! [`DeviceModel::merged_c2c`](crate::device::DeviceModel::merged_c2c)), the N⁺ up pulses of a
//! call sum to s⁺·(N⁺ + σ·√N⁺·ξ⁺) and the N⁻ down pulses to s⁻·(N⁻ + σ·√N⁻·ξ⁻) in
//! distribution, whatever their order; the order matters only through clipping at the
//! device's bounds. While accumulating the counts, the noise-free path of the weight through
//! the call (its running sum, vector by vector) is tracked with its maximum and minimum. A
//! device is updated in one step when that path, widened by 6 standard deviations of the
//! summed cycle-to-cycle noise, stays inside its bounds — the noisy path then leaves them with
//! probability below 4·10⁻⁹ (Lévy's maximal inequality for the noise martingale). Otherwise the
//! same test is applied block by block (32 vector pairs) in time order, and where a block fails
//! it, vector by vector and finally pulse by pulse. `docs/devices.md` has the argument; a
//! statistical test compares the result with the per-pulse path.

use crate::device::DeviceRow;
use crate::normal::standard_normal;
use crate::pulse::{SIGN_BIT, SLOT_MASK, TrainScales, coincidences};
use crate::rng::SimRng;
use crate::update_config::PulseType;

/// Margin of the merged path, in standard deviations of the summed cycle-to-cycle noise.
const MARGIN_SIGMAS: f32 = 6.0;

/// Vectors per block: devices that may reach a bound within the call are retried block by block
/// before falling back to vector by vector.
const BLOCK: usize = 32;

/// Scratch buffers of one row, reused across rows of a thread.
#[derive(Debug, Default)]
pub(super) struct RowScratch {
    /// For every block of [`BLOCK`] vectors and every column j (index `block·n_in + j`), the up
    /// and down counts and the noise-free path of the weight through the block (relative to its
    /// start).
    blocks: Spans,
    /// `block·n_in + j` of the blocks left for step 3.
    replay: Vec<usize>,
    cols: Vec<usize>,
    /// The whole call's span of every column (its blocks folded in time order, [`fold_blocks`]).
    whole: Spans,
}

/// [`Span`]s, structure of arrays (so that accumulating and folding them vectorizes), with the
/// net displacement `run` of each.
#[derive(Debug, Default)]
struct Spans {
    up: Vec<u32>,
    down: Vec<u32>,
    run: Vec<f32>,
    top: Vec<f32>,
    bottom: Vec<f32>,
}

impl Spans {
    /// `len` empty spans.
    fn reset(&mut self, len: usize) {
        for v in [&mut self.up, &mut self.down] {
            v.clear();
            v.resize(len, 0);
        }
        for v in [&mut self.run, &mut self.top, &mut self.bottom] {
            v.clear();
            v.resize(len, 0.0);
        }
    }

    fn get(&self, k: usize) -> Span {
        Span { up: self.up[k], down: self.down[k], top: self.top[k], bottom: self.bottom[k] }
    }
}

/// Inputs shared by every row of one update call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Trains<'a> {
    pub kind: PulseType,
    pub scales: &'a [TrainScales],
    pub x_words: &'a [u32],
    pub d_words: &'a [u32],
    pub n_in: usize,
    pub n_out: usize,
    /// For a call of one vector: the columns whose x word has a slot set (the others get no
    /// pulse); empty otherwise.
    pub x_active: &'a [usize],
}

impl Trains<'_> {
    /// The columns of a one-vector call's x words with a slot set.
    pub fn active_columns(x_words: &[u32]) -> Vec<usize> {
        x_words.iter().enumerate().filter(|(_, w)| *w & SLOT_MASK != 0).map(|(j, _)| j).collect()
    }
}

/// One device's nominal steps, bounds and cycle-to-cycle spread.
#[derive(Debug, Clone, Copy)]
struct Device {
    su: f32,
    sd: f32,
    lo: f32,
    hi: f32,
    c2c: f32,
}

impl Device {
    fn of(hrow: &DeviceRow<'_>, j: usize, c2c: f32) -> Self {
        Self { su: hrow.step_up[j], sd: hrow.step_down[j], lo: hrow.w_min[j], hi: hrow.w_max[j], c2c }
    }
}

/// Pulse counts and the extremes of the noise-free path of one device over a span of vectors
/// (the path relative to the weight at the start of the span).
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    up: u32,
    down: u32,
    top: f32,
    bottom: f32,
}

impl Span {
    /// Applies the span to `w` in one step if its path, widened by 6σ of the summed c2c noise
    /// (plus f32 rounding of the tracked path), stays inside `[lo, hi]`; false otherwise.
    fn try_merge(&self, w: &mut f32, dev: &Device, rng: &mut SimRng) -> bool {
        self.try_merge_with(w, dev, || standard_normal(rng))
    }

    /// [`Span::try_merge`] with the standard-normal draws taken from `normal`. The merged
    /// weight is clipped to the bounds like every pulse of the per-pulse path: the margin keeps
    /// it inside except with probability below 4·10⁻⁹.
    fn try_merge_with(&self, w: &mut f32, dev: &Device, mut normal: impl FnMut() -> f32) -> bool {
        let Device { su, sd, lo, hi, c2c } = *dev;
        let (fu, fd) = (self.up as f32, self.down as f32);
        let margin = MARGIN_SIGMAS * c2c * (su * su * fu + sd * sd * fd).sqrt() + 1e-5 * (su * fu + sd * fd);
        if *w + self.top + margin > hi || *w + self.bottom - margin < lo {
            return false;
        }
        let mut delta = 0.0;
        if self.up > 0 {
            delta += su * (fu + c2c * fu.sqrt() * normal());
        }
        if self.down > 0 {
            delta -= sd * (fd + c2c * fd.sqrt() * normal());
        }
        *w = (*w + delta).clamp(lo, hi);
        true
    }
}

/// The `n` pulses of one vector at one device (all of one sign: up for `n > 0`), in one step
/// if their noise-free path, widened by 6σ of its noise on both sides, stays inside the
/// bounds; `None` otherwise. The summed noise is one standard-normal draw from `normal`; the
/// result is clipped to the bounds like every pulse of the per-pulse path (the margin keeps it
/// inside except with probability below 4·10⁻⁹).
fn merge_vector(v: f32, n: i32, dev: &Device, normal: impl FnOnce() -> f32) -> Option<f32> {
    let Device { su, sd, lo, hi, c2c } = *dev;
    let is_up = n > 0;
    let step = if is_up { su } else { sd };
    let kf = n.unsigned_abs() as f32;
    let noise = step * (MARGIN_SIGMAS * c2c * kf.sqrt() + 1e-5 * kf);
    let (ahead, behind) = (step * kf + noise, noise);
    let inside = if is_up { v + ahead <= hi && v - behind >= lo } else { v - ahead >= lo && v + behind <= hi };
    inside.then(|| {
        let total = step * (kf + c2c * kf.sqrt() * normal());
        (if is_up { v + total } else { v - total }).clamp(lo, hi)
    })
}

/// Applies every coincidence of the call to row `i` of the weights; returns the pulse count.
pub(super) fn merged_row(
    t: Trains<'_>,
    i: usize,
    c2c: f32,
    hrow: DeviceRow<'_>,
    w: &mut [f32],
    scratch: &mut RowScratch,
    rng: &mut SimRng,
) -> u64 {
    if t.scales.len() == 1 {
        single_vector_row(t, i, c2c, hrow, w, &mut scratch.cols, rng)
    } else {
        general_row(t, i, c2c, hrow, w, scratch, rng)
    }
}

/// [`merged_row`] for any number of vectors: counts and paths per block, the whole call merged
/// where it can be, then blocks, vectors and single pulses.
fn general_row(
    t: Trains<'_>,
    i: usize,
    c2c: f32,
    hrow: DeviceRow<'_>,
    w: &mut [f32],
    scratch: &mut RowScratch,
    rng: &mut SimRng,
) -> u64 {
    let n_blocks = t.scales.len().div_ceil(BLOCK);
    let len = n_blocks * t.n_in;
    let RowScratch { blocks, replay, cols, whole } = scratch;
    blocks.reset(len);
    replay.clear();

    // 1. Counts and noise-free paths, block by block.
    for blk in 0..n_blocks {
        let r = blk * t.n_in..(blk + 1) * t.n_in;
        let mut acc = Acc {
            up: &mut blocks.up[r.clone()],
            down: &mut blocks.down[r.clone()],
            run: &mut blocks.run[r.clone()],
            top: &mut blocks.top[r.clone()],
            bottom: &mut blocks.bottom[r],
            step_up: hrow.step_up,
            step_down: hrow.step_down,
        };
        for b in blk * BLOCK..((blk + 1) * BLOCK).min(t.scales.len()) {
            let (s, dw) = (t.scales[b], t.d_words[b * t.n_out + i]);
            if s.bl == 0 || dw & SLOT_MASK == 0 {
                continue;
            }
            let xs = &t.x_words[b * t.n_in..(b + 1) * t.n_in];
            if t.kind == PulseType::MeanCount {
                accumulate_with(xs, &mut acc, |xw| {
                    let c = coincidences(t.kind, xw, dw, s.bl);
                    (c.max(0) as u32, (-c).max(0) as u32)
                });
            } else {
                accumulate(xs, dw, &mut acc);
            }
        }
    }
    let span = |blk: usize, j: usize| blocks.get(blk * t.n_in + j);

    // 2. The whole call in one step where no bound is in reach; else block by block, in order,
    // until a block cannot be merged: that block and all later ones go to step 3.
    fold_blocks(blocks, t.n_in, whole);
    let mut pulses = 0u64;
    for (j, wj) in w.iter_mut().enumerate() {
        let whole = whole.get(j);
        if whole.up == 0 && whole.down == 0 {
            continue;
        }
        pulses += u64::from(whole.up + whole.down);
        let dev = Device::of(&hrow, j, c2c);
        if whole.try_merge(wj, &dev, rng) {
            continue;
        }
        let mut failed = false;
        for blk in 0..n_blocks {
            let part = span(blk, j);
            if part.up == 0 && part.down == 0 {
                continue;
            }
            failed = failed || !part.try_merge(wj, &dev, rng);
            if failed {
                replay.push(blk * t.n_in + j);
            }
        }
    }

    // 3. The remaining blocks in time order (sorted by block, then column): each is merged if
    // it now can be, else replayed vector by vector, pulse by pulse where a bound is in reach.
    replay.sort_unstable();
    let mut k = 0;
    while k < replay.len() {
        let blk = replay[k] / t.n_in;
        let end = k + replay[k..].iter().take_while(|&&e| e / t.n_in == blk).count();
        cols.clear();
        for &e in &replay[k..end] {
            let j = e % t.n_in;
            if !span(blk, j).try_merge(&mut w[j], &Device::of(&hrow, j, c2c), rng) {
                cols.push(j);
            }
        }
        k = end;
        for b in blk * BLOCK..((blk + 1) * BLOCK).min(t.scales.len()) {
            let s = t.scales[b];
            let dw = t.d_words[b * t.n_out + i];
            if s.bl == 0 || dw & SLOT_MASK == 0 {
                continue;
            }
            for &j in cols.iter() {
                let n = coincidences(t.kind, t.x_words[b * t.n_in + j], dw, s.bl);
                if n != 0 {
                    replay_vector(&mut w[j], n, &Device::of(&hrow, j, c2c), rng);
                }
            }
        }
    }
    pulses
}

/// The `n` pulses of one vector at one device: merged when the path, widened by 6σ of its
/// noise on both sides, stays inside the bounds (as [`Span::try_merge`]), else pulse by pulse.
fn replay_vector(w: &mut f32, n: i32, dev: &Device, rng: &mut SimRng) {
    if let Some(v) = merge_vector(*w, n, dev, || standard_normal(rng)) {
        *w = v;
        return;
    }
    let (is_up, lo, hi) = (n > 0, dev.lo, dev.hi);
    let step = if is_up { dev.su } else { dev.sd };
    let mut v = *w;
    for _ in 0..n.unsigned_abs() {
        let mut d = step;
        if dev.c2c > 0.0 {
            d *= 1.0 + dev.c2c * standard_normal(rng);
        }
        v = if is_up { v + d } else { v - d };
        v = v.clamp(lo, hi);
    }
    *w = v;
}

/// [`merged_row`] for a call of one vector, in one pass over the columns: the same spans, the
/// same tests and the same draws in the same order as the general path (whose whole-call,
/// block and replay steps all see the one vector's span), without its block buffers. Columns
/// whose span cannot be merged are replayed after the pass, as step 3 does.
fn single_vector_row(
    t: Trains<'_>,
    i: usize,
    c2c: f32,
    hrow: DeviceRow<'_>,
    w: &mut [f32],
    failed: &mut Vec<usize>,
    rng: &mut SimRng,
) -> u64 {
    let (s, dw) = (t.scales[0], t.d_words[i]);
    if s.bl == 0 || dw & SLOT_MASK == 0 {
        return 0;
    }
    failed.clear();
    let mut pulses = 0u64;
    // (Columns without a slot in their x word get no pulse and draw nothing: skipped.)
    for &j in t.x_active {
        let (wj, xw) = (&mut w[j], t.x_words[j]);
        let n = coincidences(t.kind, xw, dw, s.bl);
        if n == 0 {
            continue;
        }
        pulses += u64::from(n.unsigned_abs());
        let dev = Device::of(&hrow, j, c2c);
        // The span as step 1 accumulates it from zero: run = cu·s⁺ − cd·s⁻.
        let (cu, cd) = (n.max(0) as u32, (-n).max(0) as u32);
        let run = 0.0 + (cu as f32 * dev.su - cd as f32 * dev.sd);
        let span = Span { up: cu, down: cd, top: 0.0f32.max(run), bottom: 0.0f32.min(run) };
        if !span.try_merge(wj, &dev, rng) {
            failed.push(j);
        }
    }
    for &j in failed.iter() {
        let n = coincidences(t.kind, t.x_words[j], dw, s.bl);
        replay_vector(&mut w[j], n, &Device::of(&hrow, j, c2c), rng);
    }
    pulses
}

/// Per-row accumulators of one call (all slices of length `n_in`).
struct Acc<'a> {
    up: &'a mut [u32],
    down: &'a mut [u32],
    run: &'a mut [f32],
    top: &'a mut [f32],
    bottom: &'a mut [f32],
    step_up: &'a [f32],
    step_down: &'a [f32],
}

/// `whole[j]` = the blocks of column j (`b`, index `block·n_in + j`) joined in time order: counts and net displacements add
/// up, and the path's extremes are those of the earlier blocks or of the next block's shifted by
/// the displacement so far. All columns at once, the columns in the inner loop, so that it runs
/// on vectors (AVX-512 where the CPU has it).
fn fold_blocks(b: &Spans, n_in: usize, whole: &mut Spans) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above); the function is safe code.
        #[allow(unsafe_code)]
        unsafe {
            fold_blocks_avx512(b, n_in, whole);
        }
        return;
    }
    fold_blocks_portable(b, n_in, whole);
}

/// [`fold_blocks_portable`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fold_blocks_avx512(b: &Spans, n_in: usize, whole: &mut Spans) {
    fold_blocks_portable(b, n_in, whole);
}

#[inline(always)]
fn fold_blocks_portable(b: &Spans, n_in: usize, whole: &mut Spans) {
    whole.reset(n_in);
    let (up, down, run) = (&mut whole.up[..n_in], &mut whole.down[..n_in], &mut whole.run[..n_in]);
    let (top, bottom) = (&mut whole.top[..n_in], &mut whole.bottom[..n_in]);
    for blk in 0..b.up.len() / n_in.max(1) {
        let r = blk * n_in..(blk + 1) * n_in;
        let (bu, bd, br) = (&b.up[r.clone()], &b.down[r.clone()], &b.run[r.clone()]);
        let (bt, bb) = (&b.top[r.clone()], &b.bottom[r]);
        for j in 0..n_in {
            // This span followed by the block's, field by field.
            up[j] += bu[j];
            down[j] += bd[j];
            top[j] = top[j].max(run[j] + bt[j]);
            bottom[j] = bottom[j].min(run[j] + bb[j]);
            run[j] += br[j];
        }
    }
}

/// Adds the coincidences of the x words `xs` with the row word `dw`: popcount(x & d) pulses,
/// up where the signs differ (SGD on +d·xᵀ), and advances the noise-free path.
fn accumulate(xs: &[u32], dw: u32, acc: &mut Acc<'_>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vpopcntdq") && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports the features `accumulate_avx512` is compiled for (checked
        // just above); the function itself is safe code.
        #[allow(unsafe_code)]
        unsafe {
            accumulate_avx512(xs, dw, acc);
        }
        return;
    }
    accumulate_portable(xs, dw, acc);
}

/// [`accumulate_portable`] compiled with AVX-512 VPOPCNTDQ, so the loop becomes 16-lane
/// vector code with vector popcounts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
fn accumulate_avx512(xs: &[u32], dw: u32, acc: &mut Acc<'_>) {
    accumulate_portable(xs, dw, acc);
}

#[inline(always)]
fn accumulate_portable(xs: &[u32], dw: u32, acc: &mut Acc<'_>) {
    let (slots, sign) = (dw & SLOT_MASK, dw & SIGN_BIT);
    accumulate_with(xs, acc, |xw| {
        let c = (xw & slots).count_ones();
        let is_up = (xw ^ sign) >> 31;
        (c * is_up, c * (1 - is_up))
    });
}

/// Adds `counts(x_j) = (up, down)` pulses for every x word and advances the noise-free path and
/// its extremes. Inlined into each caller, so the loop vectorizes for the branch-free counts of
/// [`accumulate_portable`].
#[inline(always)]
fn accumulate_with(xs: &[u32], acc: &mut Acc<'_>, counts: impl Fn(u32) -> (u32, u32)) {
    let n = xs.len();
    let (up, down, run) = (&mut acc.up[..n], &mut acc.down[..n], &mut acc.run[..n]);
    let (top, bottom) = (&mut acc.top[..n], &mut acc.bottom[..n]);
    let (su, sd) = (&acc.step_up[..n], &acc.step_down[..n]);
    for j in 0..n {
        let (cu, cd) = counts(xs[j]);
        up[j] += cu;
        down[j] += cd;
        run[j] += cu as f32 * su[j] - cd as f32 * sd[j];
        top[j] = top[j].max(run[j]);
        bottom[j] = bottom[j].min(run[j]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// The column-wise fold of the block spans (dispatched, possibly AVX-512) equals joining
    /// each column's blocks one after another, bit for bit, on random spans of 1–40 columns.
    #[test]
    fn fold_blocks_equals_joining_blocks_in_order() {
        let mut rng = crate::rng::seeded(5);
        for n_in in 1..=40 {
            let n_blocks = 1 + n_in % 7;
            let len = n_blocks * n_in;
            let ints = |rng: &mut crate::rng::SimRng| (0..len).map(|_| rng.random_range(0..50u32)).collect::<Vec<_>>();
            let floats =
                |rng: &mut crate::rng::SimRng| (0..len).map(|_| rng.random_range(-0.05f32..0.05)).collect::<Vec<_>>();
            let b = Spans {
                up: ints(&mut rng),
                down: ints(&mut rng),
                run: floats(&mut rng),
                top: floats(&mut rng),
                bottom: floats(&mut rng),
            };
            let mut whole = Spans::default();
            fold_blocks(&b, n_in, &mut whole);
            for j in 0..n_in {
                // (up, down, displacement, top, bottom), block after block.
                let want = (0..n_blocks).fold((0u32, 0u32, 0.0f32, 0.0f32, 0.0f32), |(u, d, r, t, bt), blk| {
                    let k = blk * n_in + j;
                    (u + b.up[k], d + b.down[k], r + b.run[k], t.max(r + b.top[k]), bt.min(r + b.bottom[k]))
                });
                let got = whole.get(j);
                assert_eq!((got.up, got.down), (want.0, want.1), "counts, column {j} of {n_in}");
                assert_eq!(whole.run[j].to_bits(), want.2.to_bits(), "displacement, column {j} of {n_in}");
                assert_eq!(
                    (got.top.to_bits(), got.bottom.to_bits()),
                    (want.3.to_bits(), want.4.to_bits()),
                    "path, column {j}"
                );
            }
        }
    }

    /// A one-vector call takes the single-pass path over the columns with a slot set; it gives
    /// the general path's weights, pulse count and generator state bit for bit, with devices far
    /// from and right at their bounds (so that merges, replays and single pulses all occur),
    /// columns without slots, and both pulse kinds.
    #[test]
    fn single_vector_path_equals_the_general_path() {
        let mut rng = crate::rng::seeded(9);
        for (case, kind) in [PulseType::StochasticCompressed, PulseType::MeanCount].into_iter().enumerate() {
            let (n_in, n_out) = (70, 3);
            // Stochastic trains: 31 random slots and a sign; mean count: a count up to BL and a sign.
            let word = |rng: &mut crate::rng::SimRng| match kind {
                PulseType::MeanCount => rng.random_range(0..=31u32) | (rng.random::<u32>() & SIGN_BIT),
                _ => rng.random::<u32>(),
            };
            // Every third x word without slots: its column gets no pulse (and is skipped).
            let x_words: Vec<u32> =
                (0..n_in).map(|j| if j % 3 == 0 { word(&mut rng) & SIGN_BIT } else { word(&mut rng) }).collect();
            let d_words: Vec<u32> = (0..n_out).map(|_| word(&mut rng)).collect();
            let scales = [TrainScales { bl: 31, a: 1.0, b: 1.0 }];
            let x_active = Trains::active_columns(&x_words);
            let t = Trains {
                kind,
                scales: &scales,
                x_words: &x_words,
                d_words: &d_words,
                n_in,
                n_out,
                x_active: &x_active,
            };
            let su: Vec<f32> = (0..n_in).map(|_| rng.random_range(0.005..0.02f32)).collect();
            let sd: Vec<f32> = (0..n_in).map(|_| rng.random_range(0.005..0.02f32)).collect();
            let (lo, hi) = (vec![-0.3f32; n_in], vec![0.3f32; n_in]);
            for i in 0..n_out {
                // Weights spread over the range, some at a bound.
                let w0: Vec<f32> = (0..n_in).map(|j| [-0.3, 0.3, 0.0, 0.25, -0.28][j % 5]).collect();
                let hrow = DeviceRow { step_up: &su, step_down: &sd, w_min: &lo, w_max: &hi, row: i };
                let (mut w_fast, mut w_gen) = (w0.clone(), w0.clone());
                let (mut r_fast, mut r_gen) = (crate::rng::stream(7, i as u64), crate::rng::stream(7, i as u64));
                let mut scratch = RowScratch::default();
                let p_fast = merged_row(t, i, 0.3, hrow, &mut w_fast, &mut scratch, &mut r_fast);
                let p_gen = general_row(t, i, 0.3, hrow, &mut w_gen, &mut scratch, &mut r_gen);
                assert!(p_fast > 0, "case {case}, row {i}: no pulses");
                assert_eq!(p_fast, p_gen, "case {case}, row {i}: pulses");
                let bits = |w: &[f32]| w.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&w_fast), bits(&w_gen), "case {case}, row {i}: weights");
                assert_eq!(r_fast.random::<u64>(), r_gen.random::<u64>(), "case {case}, row {i}: draws");
                assert!(w_fast.iter().any(|&v| v == 0.3 || v == -0.3), "no device at a bound");
            }
        }
    }

    /// A merged step whose noise draw lies beyond the 6σ margin (probability below 4·10⁻⁹ in a
    /// run, forced here) ends at the bound, as the per-pulse path would; within the margin it is
    /// the unclipped sum.
    #[test]
    fn merged_steps_stay_within_the_bounds() {
        let dev = Device { su: 0.01, sd: 0.02, lo: -0.5, hi: 0.5, c2c: 0.3 };
        // 10 up pulses: noise-free 0.1, margin 0.01·(6·0.3·√10 + 1e-4) ≈ 0.0569; 5 down pulses:
        // noise-free 0.1, margin 0.02·(6·0.3·√5 + 5e-5) ≈ 0.0805.
        let (start, down_start) = (0.5 - 0.1 - 0.06, -0.5 + 0.1 + 0.085);
        assert_eq!(merge_vector(start, 10, &dev, || 7.0), Some(0.5));
        assert_eq!(merge_vector(down_start, -5, &dev, || 7.0), Some(-0.5));
        let within = merge_vector(start, 10, &dev, || 1.0).expect("inside the margin");
        assert_eq!(within, start + 0.01 * (10.0 + 0.3 * 10f32.sqrt()));
        assert_eq!(merge_vector(start + 0.01, 10, &dev, || 0.0), None, "margin reaches the bound");

        let span = Span { up: 10, down: 0, top: 0.1, bottom: 0.0 };
        let mut w = start;
        assert!(span.try_merge_with(&mut w, &dev, || 7.0));
        assert_eq!(w, 0.5);
        let span = Span { up: 0, down: 5, top: 0.0, bottom: -0.1 };
        let mut w = down_start;
        assert!(span.try_merge_with(&mut w, &dev, || 7.0));
        assert_eq!(w, -0.5);
        let mut w = down_start - 0.01;
        assert!(!span.try_merge_with(&mut w, &dev, || 0.0), "margin reaches the bound");
        assert_eq!(w, down_start - 0.01, "a refused merge leaves the weight");
    }

    /// The dispatched (possibly AVX-512) accumulation equals the scalar definition, counts and
    /// noise-free path alike.
    #[test]
    fn accumulate_matches_scalar_coincidences() {
        let mut rng = crate::rng::seeded(3);
        let n = 1000;
        let xs: Vec<u32> = (0..n).map(|_| rng.random::<u32>()).collect();
        let su: Vec<f32> = (0..n).map(|j| 0.001 * (1.0 + (j % 7) as f32 * 0.1)).collect();
        let sd: Vec<f32> = (0..n).map(|j| 0.001 * (1.0 + (j % 5) as f32 * 0.1)).collect();
        let (mut up, mut down) = (vec![1u32; n], vec![2u32; n]);
        let (mut run, mut top, mut bottom) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let mut want = (up.clone(), down.clone(), run.clone(), top.clone(), bottom.clone());
        for dw in [0x8000_0001, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x1234_5678, 0x8765_4321] {
            let mut acc = Acc {
                up: &mut up,
                down: &mut down,
                run: &mut run,
                top: &mut top,
                bottom: &mut bottom,
                step_up: &su,
                step_down: &sd,
            };
            accumulate(&xs, dw, &mut acc);
            for (j, &xw) in xs.iter().enumerate() {
                let c = coincidences(PulseType::StochasticCompressed, xw, dw, 31);
                want.0[j] += c.max(0) as u32;
                want.1[j] += (-c).max(0) as u32;
                want.2[j] += c.max(0) as f32 * su[j] - (-c).max(0) as f32 * sd[j];
                want.3[j] = want.3[j].max(want.2[j]);
                want.4[j] = want.4[j].min(want.2[j]);
            }
            assert_eq!((&up, &down), (&want.0, &want.1), "counts, d {dw:#x}");
            assert_eq!((&run, &top, &bottom), (&want.2, &want.3, &want.4), "path, d {dw:#x}");
        }
    }
}
