//! A minimal MATLAB v5 writer for test fixtures (numeric matrices, optionally compressed).
#![allow(dead_code)]

use std::io::Write;

/// One variable.
#[derive(Clone, Debug)]
pub struct Var {
    name: String,
    dims: Vec<usize>,
    class: u8,
    data_type: u32,
    bytes: Vec<u8>,
}

impl Var {
    /// A uint8 array.
    pub fn u8(name: &str, dims: Vec<usize>, data: Vec<u8>) -> Self {
        Self { name: name.into(), dims, class: 9, data_type: 2, bytes: data }
    }
    /// A double array.
    pub fn f64(name: &str, dims: Vec<usize>, data: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            dims,
            class: 6,
            data_type: 9,
            bytes: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

fn element(out: &mut Vec<u8>, ty: u32, payload: &[u8]) {
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    while out.len() % 8 != 0 {
        out.push(0);
    }
}

fn matrix(v: &Var) -> Vec<u8> {
    let mut body = Vec::new();
    let mut flags = [0u8; 8];
    flags[0] = v.class;
    element(&mut body, 6, &flags); // miUINT32 array flags
    let dims: Vec<u8> = v.dims.iter().flat_map(|&d| (d as i32).to_le_bytes()).collect();
    element(&mut body, 5, &dims); // miINT32 dimensions
    element(&mut body, 1, v.name.as_bytes()); // miINT8 name
    element(&mut body, v.data_type, &v.bytes); // real part
    let mut m = Vec::new();
    m.extend_from_slice(&14u32.to_le_bytes());
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(&body);
    m
}

/// A complete .mat file.
pub fn file(vars: &[Var], compress: bool) -> Vec<u8> {
    let mut out = vec![b' '; 116];
    out[..20].copy_from_slice(b"MATLAB 5.0 MAT-file ");
    out.extend_from_slice(&[0u8; 8]); // subsystem offset
    out.extend_from_slice(&0x0100u16.to_le_bytes());
    out.extend_from_slice(b"IM");
    for v in vars {
        let m = matrix(v);
        if compress {
            let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&m).unwrap();
            let z = enc.finish().unwrap();
            out.extend_from_slice(&15u32.to_le_bytes());
            out.extend_from_slice(&(z.len() as u32).to_le_bytes());
            out.extend_from_slice(&z);
        } else {
            out.extend_from_slice(&m);
        }
    }
    out
}
