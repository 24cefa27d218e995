//! Invalid configurations and arguments give typed errors naming the field and the value.

use crossbar_sim::device::{PulsedParams, SoftBounds};
use crossbar_sim::{
    AnalogTile, ConfigError, DeviceConfig, FloatTile, IoConfig, SimError, Tile, TileConfig, UpdateConfig,
};
use ndarray::Array2;

fn err_of(cfg: TileConfig) -> ConfigError {
    match AnalogTile::new(2, 2, &cfg, 0).unwrap_err() {
        SimError::Config(e) => e,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn negative_noise_is_rejected() {
    let cfg = TileConfig { forward: IoConfig { out_noise: -0.1, ..IoConfig::default() }, ..TileConfig::default() };
    let e = err_of(cfg);
    assert!(matches!(&e, ConfigError::Negative { field, .. } if field == "forward.out_noise"), "{e:?}");
    assert!(e.to_string().contains("forward.out_noise") && e.to_string().contains("-0.1"), "{e}");
    let cfg = TileConfig { backward: IoConfig { inp_noise: f32::NAN, ..IoConfig::default() }, ..TileConfig::default() };
    assert!(err_of(cfg).to_string().contains("backward.inp_noise"));
}

#[test]
fn resolution_out_of_range_is_rejected() {
    let cfg = TileConfig { forward: IoConfig { inp_res: 2.0, ..IoConfig::default() }, ..TileConfig::default() };
    let e = err_of(cfg);
    assert!(
        matches!(&e, ConfigError::OutOfRange { field, value, .. } if field == "forward.inp_res" && *value == 2.0),
        "{e:?}"
    );
    let cfg = TileConfig { forward: IoConfig { out_bound: 0.0, ..IoConfig::default() }, ..TileConfig::default() };
    assert!(err_of(cfg).to_string().contains("forward.out_res"));
}

#[test]
fn bad_bl_is_rejected() {
    for bl in [0, 32, 1000] {
        let cfg =
            TileConfig { update: UpdateConfig { desired_bl: bl, ..UpdateConfig::default() }, ..TileConfig::default() };
        let e = err_of(cfg);
        assert!(e.to_string().contains("update.desired_bl") && e.to_string().contains(&bl.to_string()), "{e}");
    }
}

#[test]
fn crossed_bounds_are_rejected() {
    let params = PulsedParams { w_min: 0.5, w_max: 0.5, ..PulsedParams::default() };
    let e = err_of(TileConfig { device: DeviceConfig::ConstantStep(params), ..TileConfig::default() });
    assert!(matches!(&e, ConfigError::BoundsOrder { min_field, .. } if min_field == "device.w_min"), "{e:?}");
    // Soft bounds divide by the bounds: 0 itself is not allowed as a bound.
    let params = PulsedParams { w_min: 0.0, w_max: 0.5, ..PulsedParams::default() };
    let e = err_of(TileConfig {
        device: DeviceConfig::SoftBounds(SoftBounds { params, mult_noise: true, ..SoftBounds::default() }),
        ..TileConfig::default()
    });
    assert!(e.to_string().contains("w_min < 0 < w_max"), "{e}");
    let params = PulsedParams { dw_min: 0.0, ..PulsedParams::default() };
    let e = err_of(TileConfig { device: DeviceConfig::ConstantStep(params), ..TileConfig::default() });
    assert!(e.to_string().contains("device.dw_min"), "{e}");
}

#[test]
fn noise_management_needs_unit_input_bound() {
    let e = err_of(TileConfig { forward: IoConfig { inp_bound: 2.0, ..IoConfig::default() }, ..TileConfig::default() });
    assert!(e.to_string().contains("forward.inp_bound"), "{e}");
}

#[test]
fn shape_mismatches_are_errors() {
    let mut t = AnalogTile::new(3, 4, &TileConfig::default(), 0).unwrap();
    let x = Array2::<f32>::zeros((5, 3));
    let mut y = Array2::<f32>::zeros((5, 3));
    let e = t.forward(x.view(), y.view_mut()).unwrap_err();
    assert_eq!(
        e,
        SimError::ShapeMismatch { op: "AnalogTile::forward", what: "x", expected: vec![5, 4], got: vec![5, 3] }
    );
    let x = Array2::<f32>::zeros((5, 4));
    let d = Array2::<f32>::zeros((6, 3));
    let e = t.update(x.view(), d.view(), 0.1).unwrap_err();
    assert!(e.to_string().contains("AnalogTile::update") && e.to_string().contains("[6, 3]"), "{e}");
    let mut f = FloatTile::new(3, 4);
    assert!(f.set_weights(Array2::zeros((4, 3)).view()).is_err());
    assert!(AnalogTile::new(0, 4, &TileConfig::default(), 0).is_err());
}

#[test]
fn bad_learning_rate_is_an_error() {
    let mut t = AnalogTile::new(3, 4, &TileConfig::default(), 0).unwrap();
    let x = Array2::<f32>::zeros((1, 4));
    let d = Array2::<f32>::zeros((1, 3));
    for lr in [f32::NAN, -0.1, f32::INFINITY] {
        let e = t.update(x.view(), d.view(), lr).unwrap_err();
        assert!(matches!(e, SimError::InvalidArgument { name: "lr", .. }), "{e:?}");
    }
}

#[test]
fn presets_are_valid_and_named() {
    for name in crossbar_sim::PRESETS {
        TileConfig::preset(name).unwrap().validate().unwrap();
    }
    let e = TileConfig::preset("pcm").unwrap_err();
    assert!(e.to_string().contains("pcm") && e.to_string().contains("gokmen-vlasov"), "{e}");
}

#[test]
fn weight_range_must_contain_zero_and_paths_follow_toml() {
    use crossbar_sim::device::LinearStep;
    let params = PulsedParams { w_min: 0.1, w_max: 0.5, ..PulsedParams::default() };
    let e = err_of(TileConfig { device: DeviceConfig::ConstantStep(params.clone()), ..TileConfig::default() });
    assert!(e.to_string().contains("must contain 0"), "{e}");
    // Nested model parameters are reported under their TOML path.
    let params = PulsedParams { dw_min_std: -1.0, ..PulsedParams::default() };
    let e = err_of(TileConfig {
        device: DeviceConfig::LinearStep(LinearStep { params, ..LinearStep::default() }),
        ..TileConfig::default()
    });
    assert!(e.to_string().contains("device.params.dw_min_std"), "{e}");
}

/// A power-step exponent so large that the step at w = 0 (dw_min·0.5^γ) underflows to 0 would
/// silently stop every update (the pulse scales divide by it): an error naming `pow_gamma`.
#[test]
fn pow_step_whose_step_underflows_is_rejected() {
    use crossbar_sim::device::PowStep;
    let pow = |pow_gamma| TileConfig {
        device: DeviceConfig::PowStep(PowStep { pow_gamma, ..PowStep::default() }),
        ..TileConfig::default()
    };
    AnalogTile::new(2, 2, &pow(100.0), 0).expect("0.5^100 is still a positive f32 step");
    let e = err_of(pow(200.0));
    assert!(matches!(&e, ConfigError::Invalid { field, .. } if field.ends_with("pow_gamma")), "{e:?}");
    assert!(e.to_string().contains("underflows"), "{e}");
}
