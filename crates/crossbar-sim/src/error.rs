//! Typed errors of the crate: [`ConfigError`] for invalid configurations and [`SimError`] for
//! everything a tile operation can reject.

/// An invalid configuration value. Every variant names the field (a dotted path such as
/// `forward.out_noise`) and the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The value must be finite and strictly positive.
    #[error("{field} must be finite and > 0, got {}", Num(*.value))]
    NotPositive {
        /// Dotted path of the field.
        field: String,
        /// The rejected value.
        value: f64,
    },
    /// The value must be finite and non-negative.
    #[error("{field} must be finite and >= 0, got {}", Num(*.value))]
    Negative {
        /// Dotted path of the field.
        field: String,
        /// The rejected value.
        value: f64,
    },
    /// The value lies outside its documented range.
    #[error("{field} = {} is outside [{}, {}]", Num(*.value), Num(*.min), Num(*.max))]
    OutOfRange {
        /// Dotted path of the field.
        field: String,
        /// The rejected value.
        value: f64,
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// A lower bound is not below its upper bound.
    #[error("{min_field} = {} must be < {max_field} = {}", Num(*.min), Num(*.max))]
    BoundsOrder {
        /// Dotted path of the lower bound.
        min_field: String,
        /// The lower bound.
        min: f64,
        /// Dotted path of the upper bound.
        max_field: String,
        /// The upper bound.
        max: f64,
    },
    /// A combination of settings that cannot work together.
    #[error("{field}: {reason}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// Why the value is rejected.
        reason: String,
    },
    /// An unknown preset or model name.
    #[error("unknown {what} `{name}`; known: {known}")]
    UnknownName {
        /// What kind of name (e.g. `tile preset`).
        what: &'static str,
        /// The name that was asked for.
        name: String,
        /// Comma-separated list of valid names.
        known: String,
    },
}

impl ConfigError {
    /// The same error with every field path passed through `f` (e.g. to place a nested
    /// configuration's fields under their parent's path).
    pub(crate) fn map_fields(self, f: impl Fn(&str) -> String) -> Self {
        match self {
            Self::NotPositive { field, value } => Self::NotPositive { field: f(&field), value },
            Self::Negative { field, value } => Self::Negative { field: f(&field), value },
            Self::OutOfRange { field, value, min, max } => Self::OutOfRange { field: f(&field), value, min, max },
            Self::BoundsOrder { min_field, min, max_field, max } => {
                Self::BoundsOrder { min_field: f(&min_field), min, max_field: f(&max_field), max }
            }
            Self::Invalid { field, reason } => Self::Invalid { field: f(&field), reason },
            other => other,
        }
    }

    /// Checks that `value` is finite and > 0.
    pub fn check_positive(field: impl Fn() -> String, value: f64) -> Result<(), Self> {
        if value.is_finite() && value > 0.0 { Ok(()) } else { Err(Self::NotPositive { field: field(), value }) }
    }

    /// Checks that `value` is finite and ≥ 0.
    pub fn check_non_negative(field: impl Fn() -> String, value: f64) -> Result<(), Self> {
        if value.is_finite() && value >= 0.0 { Ok(()) } else { Err(Self::Negative { field: field(), value }) }
    }

    /// Checks that `value` is finite and inside `[min, max]`.
    pub fn check_range(field: impl Fn() -> String, value: f64, min: f64, max: f64) -> Result<(), Self> {
        if value.is_finite() && value >= min && value <= max {
            Ok(())
        } else {
            Err(Self::OutOfRange { field: field(), value, min, max })
        }
    }
}

/// Displays an error's value the way the user wrote it. Most configuration fields are `f32`
/// widened to `f64` for the error, and `{}` on the widened value shows the f32's binary
/// expansion (`-0.30000001192092896` for `-0.3`); a value that is exactly an `f32` is therefore
/// shown as that `f32` (its shortest round-trip form), anything else as the `f64`.
pub(crate) struct Num(pub f64);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let narrow = self.0 as f32;
        if f64::from(narrow) == self.0 { write!(f, "{narrow}") } else { write!(f, "{}", self.0) }
    }
}

/// Joins a prefix and a field name into a dotted path.
pub(crate) fn path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") }
}

/// An error of a tile operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// An array has the wrong shape.
    #[error("{op}: {what} has shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The operation that was called (e.g. `AnalogTile::forward`).
        op: &'static str,
        /// Which argument (e.g. `x`).
        what: &'static str,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// A scalar argument is invalid (e.g. a NaN learning rate).
    #[error("{op}: {name} = {} is invalid: {reason}", Num(*.value))]
    InvalidArgument {
        /// The operation that was called.
        op: &'static str,
        /// The argument's name.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// Why.
        reason: &'static str,
    },
    /// A saved tile state does not fit the tile it is restored into.
    #[error("cannot restore tile state: {reason}")]
    State {
        /// What does not match.
        reason: String,
    },
}

/// Checks a 2-D shape, producing [`SimError::ShapeMismatch`].
pub(crate) fn check_shape(
    op: &'static str,
    what: &'static str,
    got: &[usize],
    expected: [usize; 2],
) -> Result<(), SimError> {
    if got == expected {
        Ok(())
    } else {
        Err(SimError::ShapeMismatch { op, what, expected: expected.to_vec(), got: got.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widened_f32_values_print_as_written() {
        let e = ConfigError::check_range(|| "device.up_down".into(), f64::from(-1.3f32), -1.0, 1.0).unwrap_err();
        assert_eq!(e.to_string(), "device.up_down = -1.3 is outside [-1, 1]");
        let e = ConfigError::check_non_negative(|| "forward.out_noise".into(), f64::from(-0.3f32)).unwrap_err();
        assert_eq!(e.to_string(), "forward.out_noise must be finite and >= 0, got -0.3");
        let e = ConfigError::check_positive(|| "x".into(), -0.2f64).unwrap_err();
        assert_eq!(e.to_string(), "x must be finite and > 0, got -0.2");
        let e = ConfigError::check_positive(|| "x".into(), f64::NAN).unwrap_err();
        assert_eq!(e.to_string(), "x must be finite and > 0, got NaN");
        let e = ConfigError::BoundsOrder {
            min_field: "a".into(),
            min: f64::from(0.7f32),
            max_field: "b".into(),
            max: f64::from(0.6f32),
        };
        assert_eq!(e.to_string(), "a = 0.7 must be < b = 0.6");
        let e = SimError::InvalidArgument { op: "op", name: "lr", value: f64::from(-0.01f32), reason: "r" };
        assert_eq!(e.to_string(), "op: lr = -0.01 is invalid: r");
    }
}
