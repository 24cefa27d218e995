//! A minimal MATLAB v5 writer for test fixtures: a 128-byte header, then one miMATRIX element
//! per variable (array flags, dimensions, name, real part, each padded to 8 bytes), optionally
//! wrapped in zlib-compressed miCOMPRESSED elements. Little-endian.
#![allow(dead_code)]

use std::io::Write;

/// mxDOUBLE_CLASS.
pub const MX_DOUBLE: u8 = 6;
/// mxUINT8_CLASS.
pub const MX_UINT8: u8 = 9;
/// miUINT8.
pub const MI_UINT8: u32 = 2;
/// miDOUBLE.
pub const MI_DOUBLE: u32 = 9;

/// One variable.
#[derive(Clone, Debug)]
pub struct Var {
    pub name: String,
    pub dims: Vec<i32>,
    pub class: u8,
    pub data_type: u32,
    pub bytes: Vec<u8>,
}

impl Var {
    /// A uint8 array.
    pub fn u8(name: &str, dims: Vec<usize>, data: Vec<u8>) -> Self {
        Self::raw(name, to_i32(&dims), MX_UINT8, MI_UINT8, data)
    }

    /// A double array.
    pub fn f64(name: &str, dims: Vec<usize>, data: Vec<f64>) -> Self {
        Self::raw(name, to_i32(&dims), MX_DOUBLE, MI_DOUBLE, data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// Anything, consistent or not (for fuzzing).
    pub fn raw(name: &str, dims: Vec<i32>, class: u8, data_type: u32, bytes: Vec<u8>) -> Self {
        Self { name: name.into(), dims, class, data_type, bytes }
    }
}

fn to_i32(dims: &[usize]) -> Vec<i32> {
    dims.iter().map(|&d| i32::try_from(d).expect("fixture dimension fits i32")).collect()
}

fn element(out: &mut Vec<u8>, ty: u32, payload: &[u8]) {
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
}

/// The miMATRIX element of one variable.
pub fn matrix(v: &Var) -> Vec<u8> {
    let mut body = Vec::new();
    let mut flags = [0u8; 8];
    flags[0] = v.class;
    element(&mut body, 6, &flags); // miUINT32 array flags
    let dims: Vec<u8> = v.dims.iter().flat_map(|d| d.to_le_bytes()).collect();
    element(&mut body, 5, &dims); // miINT32 dimensions
    element(&mut body, 1, v.name.as_bytes()); // miINT8 name
    element(&mut body, v.data_type, &v.bytes); // real part
    let mut m = Vec::new();
    m.extend_from_slice(&14u32.to_le_bytes());
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(&body);
    m
}

/// The 128-byte header.
pub fn header() -> Vec<u8> {
    let mut out = vec![b' '; 116];
    out[..20].copy_from_slice(b"MATLAB 5.0 MAT-file ");
    out.extend_from_slice(&[0u8; 8]); // subsystem offset
    out.extend_from_slice(&0x0100u16.to_le_bytes());
    out.extend_from_slice(b"IM");
    out
}

/// `payload` as one miCOMPRESSED element.
pub fn compressed(payload: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(payload).unwrap();
    let z = enc.finish().unwrap();
    let mut out = Vec::with_capacity(z.len() + 8);
    out.extend_from_slice(&15u32.to_le_bytes());
    out.extend_from_slice(&(z.len() as u32).to_le_bytes());
    out.extend_from_slice(&z);
    out
}

/// A complete .mat file.
pub fn file(vars: &[Var], compress: bool) -> Vec<u8> {
    let mut out = header();
    for v in vars {
        let m = matrix(v);
        if compress {
            out.extend_from_slice(&compressed(&m));
        } else {
            out.extend_from_slice(&m);
        }
    }
    out
}

/// Byte offsets of the 32-bit size fields of every element tag of an uncompressed file (top
/// level and the sub-elements of each matrix): the places where a corrupted length hurts.
pub fn size_fields(b: &[u8]) -> Vec<usize> {
    let u32_at = |o: usize| b.get(o..o + 4).map(|w| u32::from_le_bytes(w.try_into().unwrap()) as usize);
    let mut out = Vec::new();
    let mut off = 128;
    while let (Some(ty), Some(size)) = (u32_at(off), u32_at(off + 4)) {
        out.push(off + 4);
        let end = off + 8 + size;
        if ty == 14 {
            let mut sub = off + 8;
            while sub + 8 <= end.min(b.len()) {
                let Some(word) = u32_at(sub) else { break };
                if word >> 16 != 0 {
                    sub += 8; // small element: tag and data in 8 bytes
                    continue;
                }
                out.push(sub + 4);
                let Some(len) = u32_at(sub + 4) else { break };
                sub += (8 + len).div_ceil(8) * 8;
            }
        }
        off = end.div_ceil(8) * 8;
    }
    out
}
