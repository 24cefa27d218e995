//! The network: configuration (serde/TOML), presets and the layer stack.

mod config;
mod network;
mod profile;

pub use config::{Init, MAX_CLASSES, MAX_NET_CHANNELS, MAX_NET_WEIGHTS, NetConfig, NetPreset};
pub use network::{NetState, Network};
pub use profile::StageTimes;
