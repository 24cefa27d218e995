//! SVHN cropped digits, format 2: MATLAB v5 `.mat` files with `X` (32×32×3×N uint8,
//! column-major) and `y` (N×1, 1..=10 where 10 is the digit 0).
//!
//! The file is parsed by the `matfile` crate after a pre-scan of our own that walks the
//! top-level elements, checks every length against the file, and inflates compressed elements
//! into a counting sink with a size cap — so a malformed or hostile file is rejected with an
//! offset before the parser allocates anything large. Parser panics are caught and reported as
//! [`DataError::Mat`].

use std::io::Read;
use std::path::Path;

use matfile::{MatFile, NumericData};

use super::{DataError, Dataset, IMAGE_BYTES, Split, read_limited};

/// Largest `.mat` file accepted (SVHN train is ~182 MB).
pub const MAX_MAT_BYTES: u64 = 1 << 30;
/// Largest inflated size of one compressed element (SVHN train's X is 225 MB).
pub const MAX_INFLATED: u64 = 512 << 20;

/// Reads one SVHN `.mat` file.
pub fn read_svhn_mat(path: &Path) -> Result<Dataset, DataError> {
    let bytes = read_limited(path, MAX_MAT_BYTES)?;
    prescan(path, &bytes)?;
    let parsed = std::panic::catch_unwind(|| MatFile::parse(&bytes[..]));
    let mat = match parsed {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err(mat_err(path, format!("{e}"))),
        Err(_) => return Err(mat_err(path, "the parser rejected the file's structure".into())),
    };
    let x = mat
        .find_by_name("X")
        .ok_or_else(|| DataError::MissingVariable { path: path.to_path_buf(), name: "X".into() })?;
    let y = mat
        .find_by_name("y")
        .ok_or_else(|| DataError::MissingVariable { path: path.to_path_buf(), name: "y".into() })?;
    let bad =
        |name: &str, reason: String| DataError::BadVariable { path: path.to_path_buf(), name: name.into(), reason };
    let size = x.size();
    if size.len() != 4 || size[0] != 32 || size[1] != 32 || size[2] != 3 {
        return Err(bad("X", format!("expected 32×32×3×N, got {size:?}")));
    }
    let n = size[3];
    let xs = match x.data() {
        NumericData::UInt8 { real, .. } => real,
        other => return Err(bad("X", format!("expected uint8, got {}", type_name(other)))),
    };
    if xs.len() != n * IMAGE_BYTES {
        return Err(bad("X", format!("{} values for {n} images", xs.len())));
    }
    let ysize = y.size();
    if ysize.iter().product::<usize>() != n || ysize.iter().filter(|&&d| d != 1).count() > 1 {
        return Err(bad("y", format!("expected {n}×1, got {ysize:?}")));
    }
    let labels_raw: Vec<f64> = match y.data() {
        NumericData::Double { real, .. } => real.clone(),
        NumericData::Single { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        NumericData::UInt8 { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        NumericData::Int32 { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        NumericData::UInt16 { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        other => return Err(bad("y", format!("unsupported type {}", type_name(other)))),
    };
    let mut labels = Vec::with_capacity(n);
    for (i, &v) in labels_raw.iter().enumerate() {
        if !(v.fract() == 0.0 && (1.0..=10.0).contains(&v)) {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                offset: i as u64,
                label: v as i64,
                n_classes: 10,
            });
        }
        labels.push((v as u16) % 10);
    }
    // Column-major X[r, c, ch, i] → CHW planes per image.
    let mut images = vec![0u8; n * IMAGE_BYTES];
    for (i, img) in images.chunks_exact_mut(IMAGE_BYTES).enumerate() {
        for ch in 0..3 {
            for c in 0..32 {
                let src = 32 * (c + 32 * (ch + 3 * i));
                for r in 0..32 {
                    img[ch * 1024 + r * 32 + c] = xs[src + r];
                }
            }
        }
    }
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Dataset { images, labels, n_classes: 10, name })
}

/// SVHN: `train_32x32.mat` and `test_32x32.mat` in `dir`.
pub fn load_svhn(dir: &Path) -> Result<Split, DataError> {
    let train = read_svhn_mat(&dir.join("train_32x32.mat"))?;
    let test = read_svhn_mat(&dir.join("test_32x32.mat"))?;
    Ok(Split { train, test })
}

fn mat_err(path: &Path, reason: String) -> DataError {
    DataError::Mat { path: path.to_path_buf(), reason }
}

fn type_name(d: &NumericData) -> &'static str {
    match d {
        NumericData::Int8 { .. } => "int8",
        NumericData::UInt8 { .. } => "uint8",
        NumericData::Int16 { .. } => "int16",
        NumericData::UInt16 { .. } => "uint16",
        NumericData::Int32 { .. } => "int32",
        NumericData::UInt32 { .. } => "uint32",
        NumericData::Int64 { .. } => "int64",
        NumericData::UInt64 { .. } => "uint64",
        NumericData::Single { .. } => "single",
        NumericData::Double { .. } => "double",
    }
}

/// Walks the top-level elements: a 128-byte header with the endian indicator, then
/// miMATRIX (14) elements padded to 8 bytes or miCOMPRESSED (15) elements whose inflated
/// size must stay within [`MAX_INFLATED`].
fn prescan(path: &Path, b: &[u8]) -> Result<(), DataError> {
    if b.len() < 128 {
        return Err(mat_err(path, format!("{} bytes is shorter than the 128-byte header", b.len())));
    }
    let little = match &b[126..128] {
        b"IM" => true,
        b"MI" => false,
        _ => return Err(mat_err(path, "no endian indicator at byte offset 126 (not a v5 .mat file)".into())),
    };
    let u32_at = |o: usize| {
        let w = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if little { u32::from_le_bytes(w) } else { u32::from_be_bytes(w) }
    };
    let mut off = 128usize;
    while off < b.len() {
        if off + 8 > b.len() {
            return Err(mat_err(path, format!("truncated element tag at byte offset {off}")));
        }
        let (ty, size) = (u32_at(off), u32_at(off + 4) as usize);
        let end = off.checked_add(8 + size).filter(|&e| e <= b.len()).ok_or_else(|| {
            mat_err(path, format!("element at byte offset {off} claims {size} bytes, past the end of the file"))
        })?;
        match ty {
            14 => off = end.div_ceil(8) * 8,
            15 => {
                let mut dec = flate2::read::ZlibDecoder::new(&b[off + 8..end]).take(MAX_INFLATED + 1);
                let inflated = std::io::copy(&mut dec, &mut std::io::sink())
                    .map_err(|e| mat_err(path, format!("corrupt compressed element at byte offset {off}: {e}")))?;
                if inflated > MAX_INFLATED {
                    return Err(DataError::Oversized { path: path.to_path_buf(), len: inflated, max: MAX_INFLATED });
                }
                off = end;
            }
            _ => return Err(mat_err(path, format!("unsupported element type {ty} at byte offset {off}"))),
        }
    }
    Ok(())
}
