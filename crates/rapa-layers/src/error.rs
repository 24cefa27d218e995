//! The crate's error type.

use crossbar_sim::{ConfigError, SimError};

/// An error of a layer operation or construction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// A tile operation failed.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A tile configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The tiling scheme cannot work with the given tile count or output map.
    #[error("scheme {scheme} with n = {n_tiles} tiles on a {out_h}×{out_w} output map: {reason}")]
    Scheme {
        /// The scheme's name.
        scheme: &'static str,
        /// Requested number of tiles.
        n_tiles: usize,
        /// Output map height.
        out_h: usize,
        /// Output map width.
        out_w: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// An invalid layer parameter.
    #[error("{field} = {value} is invalid: {reason}")]
    Invalid {
        /// The parameter's name.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
    /// An array has the wrong shape.
    #[error("{op}: {what} has shape {got:?}, expected {expected:?}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// Which argument.
        what: &'static str,
        /// Expected shape.
        expected: Vec<usize>,
        /// Shape that was passed.
        got: Vec<usize>,
    },
    /// `backward` or `update` was called without the forward (or backward) pass it needs.
    #[error("{op} needs a preceding {needs} on the same batch")]
    Order {
        /// The operation called.
        op: &'static str,
        /// The operation that must come first.
        needs: &'static str,
    },
}

/// Checks a shape.
pub(crate) fn check_shape(
    op: &'static str,
    what: &'static str,
    got: &[usize],
    expected: &[usize],
) -> Result<(), LayerError> {
    if got == expected {
        Ok(())
    } else {
        Err(LayerError::Shape { op, what, expected: expected.to_vec(), got: got.to_vec() })
    }
}
