//! SVHN cropped digits, format 2: MATLAB v5 `.mat` files with `X` (32×32×3×N uint8,
//! column-major) and `y` (N×1, 1..=10 where 10 is the digit 0).
//!
//! The file is parsed by the `matfile` crate (0.5: numeric arrays of every class, plain or
//! zlib-compressed elements) after a pre-scan of our own that walks the top-level elements,
//! checks every length against the file, and inflates compressed elements into a counting sink
//! under a size budget, so a malformed or hostile file is rejected with a byte offset before
//! the parser allocates anything large. Parser panics are caught and reported as
//! [`DataError::Mat`].

use std::io::Read;
use std::path::Path;

use matfile::{MatFile, NumericData};

use super::{DataError, Dataset, IMAGE_BYTES, Split, read_limited};

/// Largest `.mat` file accepted: 512 MiB (SVHN's `train_32x32.mat` is 182 MB).
pub const MAX_MAT_BYTES: u64 = 512 << 20;
/// Largest total inflated size of a file's compressed elements: 512 MiB (the `X` of SVHN train
/// is 226 MB). Together with [`MAX_MAT_BYTES`] this bounds the memory of one file to ~2 GiB
/// (file, the parser's copy, one inflated element, the parsed arrays, our images).
pub const MAX_INFLATED: u64 = 512 << 20;

/// MATLAB v5 element types the pre-scan knows.
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// Reads one SVHN `.mat` file.
///
/// # Errors
/// [`DataError::Io`], [`DataError::Oversized`] (file over [`MAX_MAT_BYTES`], or compressed
/// elements inflating past [`MAX_INFLATED`]), [`DataError::Mat`] (not a v5 file, lengths past
/// the end, corrupt zlib data, parser failures), [`DataError::MissingVariable`] (no `X` or
/// `y`), [`DataError::BadVariable`] (`X` not 32×32×3×N uint8; `y` not N values, or a value not
/// an integer in 1..=10).
pub fn read_svhn_mat(path: &Path) -> Result<Dataset, DataError> {
    let bytes = read_limited(path, MAX_MAT_BYTES)?;
    prescan(path, &bytes)?;
    let parsed = std::panic::catch_unwind(|| MatFile::parse(&bytes[..]));
    drop(bytes);
    let mat = match parsed {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err(mat_err(path, parser_reason(&e).into())),
        Err(_) => return Err(mat_err(path, "the parser rejected the file's structure".into())),
    };
    let missing = |name: &str| DataError::MissingVariable { path: path.to_path_buf(), name: name.into() };
    let x = mat.find_by_name("X").ok_or_else(|| missing("X"))?;
    let y = mat.find_by_name("y").ok_or_else(|| missing("y"))?;
    let bad =
        |name: &str, reason: String| DataError::BadVariable { path: path.to_path_buf(), name: name.into(), reason };

    // MATLAB drops trailing singleton dimensions: one image is 32×32×3.
    let n = match x.size().as_slice() {
        [32, 32, 3] => 1,
        &[32, 32, 3, n] => n,
        size => return Err(bad("X", format!("expected 32×32×3×N, got {}", dims(size)))),
    };
    let xs = match x.data() {
        NumericData::UInt8 { real, .. } => real,
        other => return Err(bad("X", format!("expected uint8, got {}", type_name(other)))),
    };
    if n.checked_mul(IMAGE_BYTES) != Some(xs.len()) {
        return Err(bad("X", format!("{} values for {n} images", xs.len())));
    }
    let ysize = y.size();
    let ycount = ysize.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if ycount != Some(n) || ysize.iter().filter(|&&d| d != 1).count() > 1 {
        return Err(bad("y", format!("expected {n}×1 to match X, got {}", dims(ysize))));
    }
    let values: Vec<f64> = match y.data() {
        NumericData::Double { real, .. } => real.clone(),
        NumericData::Single { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        NumericData::UInt8 { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        NumericData::Int8 { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        NumericData::UInt16 { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        NumericData::Int16 { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        NumericData::UInt32 { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        NumericData::Int32 { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        other => return Err(bad("y", format!("unsupported type {}", type_name(other)))),
    };
    let mut labels = Vec::with_capacity(n);
    for (i, &v) in values.iter().enumerate() {
        if !(v.fract() == 0.0 && (1.0..=10.0).contains(&v)) {
            return Err(bad("y", format!("element {i} is {v}, not an integer in 1..=10")));
        }
        // 10 is the digit 0.
        labels.push((v as u16) % 10);
    }
    let mut images = vec![0u8; xs.len()];
    for (src, img) in xs.chunks_exact(IMAGE_BYTES).zip(images.chunks_exact_mut(IMAGE_BYTES)) {
        to_chw(src, img);
    }
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Dataset { images, labels, n_classes: 10, name })
}

/// One image from MATLAB's column-major `X[row, col, ch]` (at `row + 32·(col + 32·ch)`) to
/// our planes (at `ch·1024 + row·32 + col`).
fn to_chw(src: &[u8], img: &mut [u8]) {
    // Each run of 32 source bytes is one column `col` of plane `ch`, with k = col + 32·ch.
    for (k, column) in src.chunks_exact(32).enumerate() {
        let (ch, col) = (k / 32, k % 32);
        let plane = &mut img[ch * 1024..(ch + 1) * 1024];
        for (row, &v) in column.iter().enumerate() {
            plane[row * 32 + col] = v;
        }
    }
}

/// SVHN: `train_32x32.mat` and `test_32x32.mat` in `dir`.
pub fn load_svhn(dir: &Path) -> Result<Split, DataError> {
    let mut train = read_split_mat(&dir.join("train_32x32.mat"))?;
    train.name = "svhn-train".into();
    Ok(Split { train, test: load_svhn_test(dir)? })
}

/// The SVHN test set alone: `test_32x32.mat` in `dir`.
pub(crate) fn load_svhn_test(dir: &Path) -> Result<Dataset, DataError> {
    let mut test = read_split_mat(&dir.join("test_32x32.mat"))?;
    test.name = "svhn-test".into();
    Ok(test)
}

/// [`read_svhn_mat`] for a file of a split, which must hold at least one image.
fn read_split_mat(path: &Path) -> Result<Dataset, DataError> {
    let ds = read_svhn_mat(path)?;
    if ds.is_empty() {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    Ok(ds)
}

fn mat_err(path: &Path, reason: String) -> DataError {
    DataError::Mat { path: path.to_path_buf(), reason }
}

/// Our wording of the parser's errors (which carry no offset).
fn parser_reason(e: &matfile::Error) -> &'static str {
    match e {
        matfile::Error::ParseError(_) => "malformed matrix element (inconsistent sub-element tags, sizes or types)",
        matfile::Error::ConversionError => "numeric data that does not fit the array's class",
        matfile::Error::IOError(_) => "read error in the parser",
        matfile::Error::InternalError => "internal error of the parser",
    }
}

fn dims(size: &[usize]) -> String {
    size.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×")
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

/// Walks the top-level elements: a 128-byte header with version 0x0100 and the endian
/// indicator, then miMATRIX
/// elements padded to 8 bytes, or miCOMPRESSED elements that must inflate to one miMATRIX
/// element (no nested compression), all of them together within [`MAX_INFLATED`].
fn prescan(path: &Path, b: &[u8]) -> Result<(), DataError> {
    let header =
        b.get(..128).ok_or_else(|| mat_err(path, format!("{} bytes is shorter than the 128-byte header", b.len())))?;
    let little = match header.get(126..128) {
        Some(b"IM") => true,
        Some(b"MI") => false,
        _ => return Err(mat_err(path, "no endian indicator at byte offset 126 (not a v5 .mat file)".into())),
    };
    let version = match header.get(124..126) {
        Some(&[a, b]) if little => u16::from_le_bytes([a, b]),
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    };
    if version != 0x0100 {
        let hint = if version == 0x0200 { ": MATLAB 7.3 (HDF5) files are not supported, save with -v7" } else { "" };
        return Err(mat_err(path, format!("version {version:#06x} at byte offset 124, expected 0x0100{hint}")));
    }
    let word = |w: [u8; 4]| if little { u32::from_le_bytes(w) } else { u32::from_be_bytes(w) };
    let tag8 = |t: [u8; 8]| {
        let [a, b, c, d, e, f, g, h] = t;
        (word([a, b, c, d]), word([e, f, g, h]) as usize)
    };
    let tag = |s: &[u8]| s.get(..8).and_then(|t| <[u8; 8]>::try_from(t).ok()).map(tag8);
    let mut budget = MAX_INFLATED;
    let mut off = 128usize;
    while off < b.len() {
        let (ty, size) = b
            .get(off..)
            .and_then(tag)
            .ok_or_else(|| mat_err(path, format!("truncated element tag at byte offset {off}")))?;
        let end = off.checked_add(8).and_then(|o| o.checked_add(size)).filter(|&e| e <= b.len()).ok_or_else(|| {
            mat_err(path, format!("element at byte offset {off} claims {size} bytes, past the end of the file"))
        })?;
        let body = b.get(off + 8..end).unwrap_or_default();
        match ty {
            MI_MATRIX => off = end.div_ceil(8) * 8,
            MI_COMPRESSED => {
                let corrupt =
                    |e: std::io::Error| mat_err(path, format!("corrupt compressed element at byte offset {off}: {e}"));
                if budget < 8 {
                    return Err(DataError::Oversized {
                        path: path.to_path_buf(),
                        len: MAX_INFLATED + 1,
                        max: MAX_INFLATED,
                    });
                }
                let mut dec = flate2::read::ZlibDecoder::new(body).take(budget.saturating_add(1));
                let mut inner = [0u8; 8];
                dec.read_exact(&mut inner).map_err(corrupt)?;
                let (inner_ty, _) = tag8(inner);
                if inner_ty != MI_MATRIX {
                    return Err(mat_err(
                        path,
                        format!("compressed element at byte offset {off} holds element type {inner_ty}, not a matrix"),
                    ));
                }
                let rest = std::io::copy(&mut dec, &mut std::io::sink()).map_err(corrupt)?;
                let inflated = rest + 8;
                if inflated > budget {
                    return Err(DataError::Oversized {
                        path: path.to_path_buf(),
                        len: MAX_INFLATED - budget + inflated,
                        max: MAX_INFLATED,
                    });
                }
                budget -= inflated;
                off = end;
            }
            _ => return Err(mat_err(path, format!("unsupported element type {ty} at byte offset {off}"))),
        }
    }
    Ok(())
}
