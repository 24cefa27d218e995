//! Constant-time cycle accounting and the timing model that turns counts into analog time.
//!
//! An analog tile computes one MVM (forward or backward) of a whole vector in one constant-time
//! step, whatever its size, and one rank-1 pulsed update per vector pair. The counters record
//! those steps; [`TimingModel`] assigns each a duration.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, path};

/// Operation counts of one tile since construction (or the last reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleCounters {
    /// Forward MVM cycles: one per input vector.
    pub forward_cycles: u64,
    /// Backward MVM cycles: one per error vector.
    pub backward_cycles: u64,
    /// Update cycles: one per (x, d) vector pair.
    pub update_cycles: u64,
    /// Forward analog passes, including bound-management repeats (≥ forward_cycles).
    pub forward_passes: u64,
    /// Backward analog passes (= backward_cycles: the backward pass has no bound management).
    pub backward_passes: u64,
    /// Pulse slots of all update cycles: Σ BL over vector pairs.
    pub update_slots: u64,
    /// Device pulses applied: Σ over weights of the coincidence counts.
    pub pulses: u64,
}

impl CycleCounters {
    /// Adds another counter set (e.g. to total the tiles of a layer).
    pub fn accumulate(&mut self, other: &Self) {
        self.forward_cycles += other.forward_cycles;
        self.backward_cycles += other.backward_cycles;
        self.update_cycles += other.update_cycles;
        self.forward_passes += other.forward_passes;
        self.backward_passes += other.backward_passes;
        self.update_slots += other.update_slots;
        self.pulses += other.pulses;
    }
}

/// Durations of the analog operations, in nanoseconds.
///
/// Defaults follow the RPU design point of Gokmen & Vlasov (2016) as summarized by Haensch,
/// Gokmen & Puri (2019): 80 ns integration per MVM; update pulses of 1 ns per slot. These are
/// assumptions of the model (see `docs/timing.md`), not measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimingModel {
    /// One forward analog pass (integration + conversion). Default: 80 ns.
    pub forward_pass_ns: f64,
    /// One backward analog pass. Default: 80 ns.
    pub backward_pass_ns: f64,
    /// One pulse slot of an update cycle. Default: 1 ns.
    pub update_slot_ns: f64,
    /// Fixed overhead of each update cycle (pulse generation). Default: 0 ns.
    pub update_cycle_ns: f64,
}

impl Default for TimingModel {
    fn default() -> Self {
        Self { forward_pass_ns: 80.0, backward_pass_ns: 80.0, update_slot_ns: 1.0, update_cycle_ns: 0.0 }
    }
}

impl TimingModel {
    /// Checks every field.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        ConfigError::check_non_negative(|| path(prefix, "forward_pass_ns"), self.forward_pass_ns)?;
        ConfigError::check_non_negative(|| path(prefix, "backward_pass_ns"), self.backward_pass_ns)?;
        ConfigError::check_non_negative(|| path(prefix, "update_slot_ns"), self.update_slot_ns)?;
        ConfigError::check_non_negative(|| path(prefix, "update_cycle_ns"), self.update_cycle_ns)
    }

    /// Simulated analog time of the counted operations, in ns, if the tile did them one after
    /// the other.
    pub fn analog_time_ns(&self, c: &CycleCounters) -> f64 {
        c.forward_passes as f64 * self.forward_pass_ns
            + c.backward_passes as f64 * self.backward_pass_ns
            + c.update_slots as f64 * self.update_slot_ns
            + c.update_cycles as f64 * self.update_cycle_ns
    }
}
