//! `rapa device`: the pulse response of a device preset or configuration (PNG + CSV).

use std::path::PathBuf;

use clap::Args;
use crossbar_sim::TileConfig;
use rapa_layers::TileKind;
use rapa_train::TrainError;
use rapa_train::analysis::plots::device_response;
use rapa_train::analysis::{default_pulses, pulse_response};
use rapa_train::train::{TrainConfig, check_replaceable, write_atomic};

#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// An analog tile preset (aihwkit-default, gokmen-vlasov, idealized, reram-sb, capacitor, tiki-taka,
    /// tiki-taka-idealized, tiki-taka-reram-sb, chopped-tiki-taka, agad: the visible device)
    #[arg(long, default_value = "aihwkit-default")]
    device: String,
    /// A configuration file (the format of a run's config.toml) whose tile, `[net.tile]` or the
    /// preset named by `net.device`, replaces --device
    #[arg(long, conflicts_with = "device")]
    config: Option<PathBuf>,
    /// Devices drawn (each with its own device-to-device variation), one trace each
    #[arg(long, default_value_t = 5)]
    traces: usize,
    /// Pulses per direction and cycle [default: 1.5 × (w_max − w_min)/dw_min of the device]
    #[arg(long)]
    pulses: Option<usize>,
    /// Up-then-down cycles
    #[arg(long, default_value_t = 2)]
    cycles: usize,
    /// Seed of the device draws and the cycle-to-cycle noise
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output PNG; every pulse goes to a CSV beside it (same name, .csv)
    #[arg(long, default_value = "device.png")]
    out: PathBuf,
}

pub fn device(a: DeviceArgs) -> Result<(), TrainError> {
    if !a.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        return Err(TrainError::Config {
            field: "--out".into(),
            reason: format!("{} must end in .png (its CSV goes beside it with the extension .csv)", a.out.display()),
        });
    }
    let csv = a.out.with_extension("csv");
    for path in [&a.out, &csv] {
        check_replaceable(path).map_err(|e| TrainError::Config { field: "--out".into(), reason: e.to_string() })?;
    }
    let (cfg, name) = match &a.config {
        Some(path) => {
            let net = TrainConfig::from_toml_file(path)?.net;
            match net.tile_kind()? {
                TileKind::Analog(cfg) => (*cfg, format!("the tile of {}", path.display())),
                TileKind::Float => {
                    return Err(TrainError::Config {
                        field: "--config".into(),
                        reason: format!("{} has float tiles (net.device = \"float\", no [net.tile])", path.display()),
                    });
                }
                TileKind::Inference(_) => {
                    return Err(TrainError::Config {
                        field: "--config".into(),
                        reason: format!(
                            "{} has inference tiles ([net.inference]): they have no pulsed device",
                            path.display()
                        ),
                    });
                }
            }
        }
        None => {
            let cfg = TileConfig::preset(&a.device)
                .map_err(|e| TrainError::Config { field: "--device".into(), reason: e.to_string() })?;
            (cfg, format!("`{}`", a.device))
        }
    };
    let pulses = a.pulses.unwrap_or_else(|| default_pulses(&cfg));
    let response = pulse_response(&cfg, a.traces, pulses, a.cycles, a.seed)?;
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    }
    write_atomic(&csv, response.csv().as_bytes())?;
    let title = format!("Pulse response of {name}: {} devices, {pulses} pulses up then down", a.traces);
    device_response(&a.out, &title, &response)?;
    for (t, (lo, hi)) in response.bounds.iter().enumerate() {
        let w: Vec<f32> = response.pulses.iter().filter(|p| p.trace == t).map(|p| p.after).collect();
        let (min, max) = w.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        println!("device {t}: bounds [{lo}, {hi}], weights reached [{min}, {max}]");
    }
    println!("wrote {} and {}", a.out.display(), csv.display());
    Ok(())
}
