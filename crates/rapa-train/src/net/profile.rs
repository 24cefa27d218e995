//! Wall-clock time per layer and pass ([`StageTimes`]), collected by a [`Network`](super::Network)
//! when profiling is on (`rapa bench --profile`). Two `Instant::now()` calls per stage, ~40
//! stages per training step: negligible next to the layers themselves.

use std::time::{Duration, Instant};

/// Accumulated wall time of named stages, in the order they first ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimes {
    stages: Vec<(&'static str, Duration, u64)>,
}

impl StageTimes {
    /// Runs `f`, adding its wall time to stage `name`.
    pub fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.add(name, t.elapsed());
        out
    }

    /// Adds `d` to stage `name` (created at the end if new) and counts one call.
    pub fn add(&mut self, name: &'static str, d: Duration) {
        match self.stages.iter_mut().find(|s| s.0 == name) {
            Some(s) => {
                s.1 += d;
                s.2 += 1;
            }
            None => self.stages.push((name, d, 1)),
        }
    }

    /// `(name, total time, calls)` per stage, in first-run order.
    pub fn stages(&self) -> &[(&'static str, Duration, u64)] {
        &self.stages
    }

    /// Sum over all stages.
    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.1).sum()
    }
}

/// Times `f` under `name` when `times` is `Some`, else just runs it.
pub(crate) fn timed<T>(times: &mut Option<StageTimes>, name: &'static str, f: impl FnOnce() -> T) -> T {
    match times {
        Some(t) => t.time(name, f),
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_accumulate_in_first_run_order() {
        let mut t = StageTimes::default();
        t.add("b", Duration::from_millis(2));
        t.add("a", Duration::from_millis(1));
        t.add("b", Duration::from_millis(3));
        assert_eq!(t.stages(), &[("b", Duration::from_millis(5), 2), ("a", Duration::from_millis(1), 1)]);
        assert_eq!(t.total(), Duration::from_millis(6));
        let mut none = None;
        assert_eq!(timed(&mut none, "x", || 7), 7);
        let mut some = Some(StageTimes::default());
        assert_eq!(timed(&mut some, "x", || 8), 8);
        assert_eq!(some.unwrap().stages()[0].2, 1);
    }
}
