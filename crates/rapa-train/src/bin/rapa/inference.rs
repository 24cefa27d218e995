//! `rapa inference`: trained models programmed onto PCM, test error against the time since
//! programming, with and without drift compensation (CSV + PNG).

use std::path::PathBuf;

use clap::Args;
use crossbar_sim::{DriftCompensation, InferenceConfig};
use rapa_train::TrainError;
use rapa_train::analysis::plots::line_plot;
use rapa_train::analysis::{PcmEval, make_digital, pcm_curve};
use rapa_train::train::{evaluate, read_toml, write_atomic};

use crate::analyze::{Model, csv_field, in_pool};

#[derive(Debug, Args)]
pub struct InferenceArgs {
    /// Run directories of trained models (float or analog)
    #[arg(long, required = true, num_args = 1..)]
    model: Vec<PathBuf>,
    /// Read times in seconds since programming, comma separated (each in [0, 1e12], no repeats)
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, default_value = "1,3600,86400,2592000,31536000")]
    t_inference: Vec<f64>,
    /// Independent programmings (chips) per model
    #[arg(long, default_value_t = 3, value_parser = crate::at_least_one)]
    repeats: usize,
    /// Drift compensations to compare, comma separated: none, global, per-column [default: the configuration's, global]
    #[arg(long, value_delimiter = ',')]
    compensation: Vec<DriftCompensation>,
    /// Inference tile configuration (TOML: tables forward, mapping, pcm and the key compensation) [default: aihwkit's InferenceRPUConfig with weight_scaling_omega 1]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Put only these layers on PCM, comma separated (conv1, conv2, …, fc); the others stay digital [default: all]
    #[arg(long, value_delimiter = ',')]
    layers: Vec<String>,
    /// Seed of the chips (programming and read noise)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Evaluate on N test images stratified by class (spread evenly within each) [default: the run's setting]
    #[arg(long, value_parser = crate::at_least_one)]
    limit_test: Option<usize>,
    /// Output directory for inference.csv and inference.png [default: the first model's directory]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compute threads, 0 = one per core
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

pub fn inference(a: InferenceArgs) -> Result<(), TrainError> {
    let mut cfg = match &a.config {
        Some(path) => read_toml::<InferenceConfig>(path)?,
        None => InferenceConfig::default(),
    };
    cfg.validate().map_err(|e| TrainError::Config {
        field: a.config.as_ref().map_or("inference".into(), |p| p.display().to_string()),
        reason: e.to_string(),
    })?;
    let max = crossbar_sim::pcm::MAX_T_INFERENCE;
    if let Some(t) = a.t_inference.iter().find(|t| !(0.0..=max).contains(*t)) {
        return Err(TrainError::Config {
            field: "--t-inference".into(),
            reason: format!("each time must be in [0, {max:e}] seconds, got {t}"),
        });
    }
    if let Some((k, t)) = a.t_inference.iter().enumerate().find(|(k, t)| a.t_inference[..*k].contains(t)) {
        return Err(TrainError::Config {
            field: "--t-inference".into(),
            reason: format!(
                "lists {t} twice (entries {} and {})",
                a.t_inference.iter().position(|u| u == t).unwrap_or(0) + 1,
                k + 1
            ),
        });
    }
    let comps = if a.compensation.is_empty() { vec![cfg.compensation] } else { a.compensation.clone() };
    let out = a.out.clone().unwrap_or_else(|| a.model[0].clone());
    crate::check_out_dir(&out)?;
    let mut csv = String::from("model,compensation,t_inference_s,repeat,test_error,layers\n");
    let on_pcm = if a.layers.is_empty() { "all".to_string() } else { a.layers.join("+") };
    let mut series = Vec::new();
    for dir in &a.model {
        let mut m = Model::load(dir)?;
        let layers = layer_indices(&a.layers, m.net.convs().len())?;
        let data = m.data(a.limit_test)?;
        let batch = m.ck.config.eval_batch;
        let state = m.ck.net.clone();
        let net_seed = m.ck.config.seed;
        // The digital reference: the same weights on exact float tiles (an analog- or
        // hardware-aware-trained model would otherwise be evaluated through its noisy tiles).
        make_digital(&mut m.net)?;
        let digital =
            in_pool(a.threads, m.ck.config.flush_denormals, || evaluate(&mut m.net, &data.test, &m.norm, batch, 1))?
                .error;
        csv.push_str(&format!("{},digital,,,{digital:.6},\n", csv_field(dir)));
        println!("{}: digital test error {:.2} % ({} images)", m.label(), 100.0 * digital, data.test.len());
        for &comp in &comps {
            cfg.compensation = comp;
            let eval = PcmEval {
                cfg: cfg.clone(),
                times: a.t_inference.clone(),
                repeats: a.repeats,
                seed: a.seed,
                batch,
                layers: layers.clone(),
            };
            let points = in_pool(a.threads, m.ck.config.flush_denormals, || {
                pcm_curve(&state, net_seed, &data.test, &m.norm, &eval)
            })?;
            for p in &points {
                csv.push_str(&format!(
                    "{},{comp},{},{},{:.6},{on_pcm}\n",
                    csv_field(dir),
                    p.t_inference,
                    p.repeat,
                    p.error
                ));
            }
            let mut curve = Vec::new();
            for &t in &a.t_inference {
                let errs: Vec<f64> = points.iter().filter(|p| p.t_inference == t).map(|p| p.error).collect();
                let mean = errs.iter().sum::<f64>() / errs.len() as f64;
                let sd = if errs.len() > 1 {
                    (errs.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (errs.len() - 1) as f64).sqrt()
                } else {
                    0.0
                };
                println!(
                    "{}: compensation {comp:<10} t {t:>10} s  test error {:6.2} ± {:.2} % ({} chips)",
                    m.short_label(),
                    100.0 * mean,
                    100.0 * sd,
                    errs.len()
                );
                if t > 0.0 {
                    curve.push((t.log10(), 100.0 * mean));
                }
            }
            let which = if a.layers.is_empty() { String::new() } else { format!(" {on_pcm} on PCM") };
            series.push((format!("{} {comp}{which} (digital {:.1} %)", m.short_label(), 100.0 * digital), curve));
        }
    }
    // Only now that every model has been evaluated: a failure leaves no empty --out.
    std::fs::create_dir_all(&out).map_err(|e| TrainError::io(&out, e))?;
    write_atomic(&out.join("inference.csv"), csv.as_bytes())?;
    line_plot(
        &out.join("inference.png"),
        "PCM inference: test error after programming (mean over chips)",
        "log10(time since programming / s)",
        "test error (%)",
        &series,
    )?;
    println!("wrote {} and {}", out.join("inference.csv").display(), out.join("inference.png").display());
    Ok(())
}

/// The 0-based layer indices of `names` (`conv1` … `conv{n_convs}`, `fc` = `n_convs`).
fn layer_indices(names: &[String], n_convs: usize) -> Result<Vec<usize>, TrainError> {
    let known = || (1..=n_convs).map(|k| format!("conv{k}")).chain(["fc".to_string()]).collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    for name in names {
        let l = match name.as_str() {
            "fc" => Some(n_convs),
            s => s
                .strip_prefix("conv")
                .and_then(|k| k.parse::<usize>().ok())
                .filter(|k| (1..=n_convs).contains(k))
                .map(|k| k - 1),
        };
        match l {
            Some(l) if !out.contains(&l) => out.push(l),
            Some(_) => {
                return Err(TrainError::Config { field: "--layers".into(), reason: format!("lists {name} twice") });
            }
            None => {
                return Err(TrainError::Config {
                    field: "--layers".into(),
                    reason: format!("unknown layer `{name}`; the network has {}", known()),
                });
            }
        }
    }
    Ok(out)
}
