//! The pulse response of a device configuration (what `rapa device` plots): single pulses,
//! `pulses` up then `pulses` down, repeated `cycles` times, applied one by one to `traces`
//! devices of a tile built from the configuration (each with its own device-to-device draw and
//! cycle-to-cycle noise), starting from weight 0 clipped to each device's bounds.
//!
//! The pulses go straight to the device model ([`crossbar_sim::DeviceModel::apply_row`]), so
//! the response shows the device alone: no pulse trains, periphery, update management,
//! per-update decay or write noise (the traces are the persistent weights). Stuck devices
//! (`dynamics.corrupt_devices_prob`) are in the tile's drawn parameters and show as flat
//! traces.

use crossbar_sim::rng::{derive_seed, stream};
use crossbar_sim::{AnalogTile, DeviceConfig, TileConfig};

use crate::error::TrainError;

/// The most pulses (traces × cycles × 2 × pulses) one response may hold: 4·10⁶ records of 16
/// bytes.
pub const MAX_PULSES: usize = 4_000_000;

/// One pulse of a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pulse {
    /// The trace (device) index.
    pub trace: usize,
    /// Pulse number within the trace, from 1.
    pub index: usize,
    /// Up (potentiation) or down.
    pub up: bool,
    /// The weight before the pulse.
    pub before: f32,
    /// The weight after it.
    pub after: f32,
}

/// Every pulse of every trace, with each trace's bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct PulseResponse {
    /// The pulses, trace by trace, in the order applied.
    pub pulses: Vec<Pulse>,
    /// `(b_min, b_max)` of each trace's device.
    pub bounds: Vec<(f32, f32)>,
}

impl PulseResponse {
    /// The pulses as CSV: `trace,pulse,direction,w_before,w_after`.
    pub fn csv(&self) -> String {
        let mut s = String::from("trace,pulse,direction,w_before,w_after\n");
        for p in &self.pulses {
            let dir = if p.up { "up" } else { "down" };
            s.push_str(&format!("{},{},{dir},{},{}\n", p.trace, p.index, p.before, p.after));
        }
        s
    }
}

/// Pulses per direction that cross the device's mean range 1.5 times at the mean step
/// (`1.5·(w_max − w_min)/dw_min`, at least 10 and at most 100 000), or 1 000 for a device
/// without the common parameters.
pub fn default_pulses(cfg: &TileConfig) -> usize {
    match cfg.device.params() {
        Some(p) => ((1.5 * f64::from(p.w_max - p.w_min) / f64::from(p.dw_min)).ceil() as usize).clamp(10, 100_000),
        None => 1000,
    }
}

/// The pulse response of `traces` devices of `cfg` (see the module docs); the device draws come
/// from `seed` as for a tile built with it, the cycle-to-cycle noise from streams of it.
pub fn pulse_response(
    cfg: &TileConfig,
    traces: usize,
    pulses: usize,
    cycles: usize,
    seed: u64,
) -> Result<PulseResponse, TrainError> {
    let bad = |field: &str, reason: String| TrainError::Config { field: field.into(), reason };
    for (field, v) in [("--traces", traces), ("--pulses", pulses), ("--cycles", cycles)] {
        if v == 0 {
            return Err(bad(field, "must be at least 1".into()));
        }
    }
    let total = traces.saturating_mul(cycles).saturating_mul(2).saturating_mul(pulses);
    if total > MAX_PULSES {
        return Err(bad(
            "--traces/--pulses/--cycles",
            format!("traces × cycles × 2 × pulses = {total} pulses, at most {MAX_PULSES}"),
        ));
    }
    if matches!(cfg.device, DeviceConfig::Ideal) {
        return Err(bad("device", "the ideal device takes exact float updates, not pulses".into()));
    }
    // One device column (a digital bias needs its own input beside it).
    let inputs = 1 + usize::from(cfg.mapping.digital_bias);
    let tile = AnalogTile::new(traces, inputs, cfg, seed).map_err(|e| bad("device", e.to_string()))?;
    let (device, hidden) = (tile.device(), tile.hidden());
    let noise_seed = derive_seed(seed, 0x7075_6c73_6573);
    let mut out = Vec::with_capacity(total);
    let mut bounds = Vec::with_capacity(traces);
    for i in 0..traces {
        let row = hidden.row(i);
        let (lo, hi) = (row.w_min[0], row.w_max[0]);
        bounds.push((lo, hi));
        let mut rng = stream(noise_seed, i as u64);
        let mut w = [0.0f32.clamp(lo, hi)];
        let mut index = 0;
        for _ in 0..cycles {
            for up in [true, false] {
                for _ in 0..pulses {
                    let before = w[0];
                    device.apply_row(hidden, row, &mut w, &[if up { 1 } else { -1 }], &mut rng);
                    index += 1;
                    out.push(Pulse { trace: i, index, up, before, after: w[0] });
                }
            }
        }
    }
    Ok(PulseResponse { pulses: out, bounds })
}
