//! How much of an analog network sits at its device bounds.
//!
//! Reads a training checkpoint (`rapa train … --out DIR` writes `DIR/checkpoint.bin`) and prints,
//! for every layer with analog tiles, the share of devices within one device step of their upper
//! or lower bound, the mean |stored weight| against the mean bound, and the digital output scales
//! of the weight mapping. With a second, float checkpoint of the same network it also prints how
//! far the float weights of each layer grew beyond what the analog devices can represent
//! (α·b_max per output row).
//!
//! ```text
//! cargo run --release --example device_saturation -- runs/N/checkpoint.bin [runs/A/checkpoint.bin]
//! ```

use std::path::Path;
use std::process::ExitCode;

use crossbar_sim::{Tile, TileSnapshot};
use rapa_train::train::read_checkpoint;

/// Per-layer statistics of the analog tiles.
#[derive(Default)]
struct Stats {
    devices: usize,
    at_upper: usize,
    at_lower: usize,
    abs_w: f64,
    bound: f64,
    alpha_min: f32,
    alpha_max: f32,
}

fn layer_stats(tiles: &[TileSnapshot]) -> Option<Stats> {
    let mut s = Stats { alpha_min: f32::INFINITY, alpha_max: 0.0, ..Stats::default() };
    for t in tiles {
        let TileSnapshot::Analog(a) = t else { return None };
        let h = &a.hidden;
        for (((&w, &hi), &lo), (&up, &down)) in
            a.weights.iter().zip(&h.w_max).zip(&h.w_min).zip(h.step_up.iter().zip(&h.step_down))
        {
            s.devices += 1;
            if w >= hi - up.abs() {
                s.at_upper += 1;
            }
            if w <= lo + down.abs() {
                s.at_lower += 1;
            }
            s.abs_w += f64::from(w.abs());
            s.bound += 0.5 * f64::from(hi - lo);
        }
        for &al in &a.mapping_scales {
            s.alpha_min = s.alpha_min.min(al);
            s.alpha_max = s.alpha_max.max(al);
        }
    }
    Some(s)
}

/// Max |w| of each output row of a float tile list, and the analog limit α·b_max of the same row.
fn growth(analog: &[TileSnapshot], float: &[TileSnapshot]) -> Option<(f32, f32)> {
    // Ratio of the float row maximum to the analog row limit: mean over rows and the largest.
    // Only for the same network: as many tiles, each of the same shape.
    if analog.len() != float.len() {
        return None;
    }
    let (mut sum, mut n, mut max) = (0.0f32, 0usize, 0.0f32);
    for (a, f) in analog.iter().zip(float) {
        let (TileSnapshot::Analog(a), TileSnapshot::Float(f)) = (a, f) else { return None };
        // With a digital bias the devices hold all columns but the last (the bias).
        let fw = f.weights();
        let fw = fw.slice(ndarray::s![.., ..a.weights.ncols().min(fw.ncols())]);
        if fw.dim() != a.weights.dim() {
            return None;
        }
        for (r, row) in fw.rows().into_iter().enumerate() {
            let alpha = a.mapping_scales.get(r).copied().unwrap_or(1.0);
            // The row's mean upper bound (single devices may have a bound near zero).
            let bmax = a.hidden.w_max.row(r).mean().unwrap_or(f32::NAN);
            let need = row.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
            let ratio = need / (alpha * bmax);
            sum += ratio;
            n += 1;
            max = max.max(ratio);
        }
    }
    (n > 0).then(|| (sum / n as f32, max))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(analog_path) = args.first() else {
        eprintln!("usage: device_saturation ANALOG_CHECKPOINT [FLOAT_CHECKPOINT]");
        return ExitCode::FAILURE;
    };
    let analog = match read_checkpoint(Path::new(analog_path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let float = match args.get(1).map(|p| read_checkpoint(Path::new(p))).transpose() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{analog_path}: epoch {}", analog.epoch);
    println!(
        "layer   devices   at upper  at lower  mean|w'|/mean bound  alpha range        float max|w| / (alpha*mean b_max): mean, max"
    );
    let mut layers: Vec<(String, Vec<TileSnapshot>)> =
        analog.net.convs.iter().enumerate().map(|(l, c)| (format!("conv{}", l + 1), c.tiles.clone())).collect();
    layers.push(("fc".into(), vec![analog.net.fc.clone()]));
    let float_layers: Option<Vec<Vec<TileSnapshot>>> = float.as_ref().map(|f| {
        let mut v: Vec<Vec<TileSnapshot>> = f.net.convs.iter().map(|c| c.tiles.clone()).collect();
        v.push(vec![f.net.fc.clone()]);
        v
    });
    for (i, (name, tiles)) in layers.iter().enumerate() {
        let Some(s) = layer_stats(tiles) else {
            println!("{name:<6}  (float tiles)");
            continue;
        };
        let g = float_layers
            .as_ref()
            .and_then(|f| f.get(i))
            .and_then(|ft| growth(tiles, ft))
            .map_or(String::from("-"), |(m, x)| format!("{m:.2}, {x:.2}"));
        let alpha =
            if s.alpha_max > 0.0 { format!("{:.2e}..{:.2e}", s.alpha_min, s.alpha_max) } else { "(no mapping)".into() };
        println!(
            "{name:<6} {:>9} {:>9.2}% {:>8.2}% {:>20.3}  {alpha:<17}  {g}",
            s.devices,
            100.0 * s.at_upper as f64 / s.devices as f64,
            100.0 * s.at_lower as f64 / s.devices as f64,
            s.abs_w / s.bound,
        );
    }
    ExitCode::SUCCESS
}
