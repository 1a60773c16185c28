//! NPY v1.0 output (`<f4`, C order) for `dump` and `--save-activations`.

use std::io::Write;

/// The NPY header for an f32 array of `shape`, padded so the data starts 64-aligned.
pub fn header_f32(shape: &[u64]) -> Vec<u8> {
    let shape_txt = match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // magic(6) + version(2) + len(2) + dict + '\n' must be a multiple of 64.
    let total = 10 + dict.len() + 1;
    let pad = (64 - total % 64) % 64;
    dict.push_str(&" ".repeat(pad));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

pub fn write_f32(w: &mut impl Write, shape: &[u64], values: &[f32]) -> std::io::Result<()> {
    w.write_all(&header_f32(shape))?;
    let mut buf = Vec::with_capacity(values.len().min(1 << 20) * 4);
    for chunk in values.chunks(1 << 20) {
        buf.clear();
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Read an NPY v1/v2 `<f4` array: (shape, values). For tests and scripts; refuses anything else.
pub fn read_f32(bytes: &[u8]) -> Option<(Vec<u64>, Vec<f32>)> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return None;
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], *bytes.get(10)?, *bytes.get(11)?]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(bytes.get(start..start + hlen)?).ok()?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return None;
    }
    let sh = header.split("'shape':").nth(1)?;
    let inner = sh.split('(').nth(1)?.split(')').next()?;
    let shape: Vec<u64> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    let data = bytes.get(start + hlen..)?;
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (values.len() as u64 == shape.iter().product::<u64>()).then_some((shape, values))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let mut v = Vec::new();
        super::write_f32(&mut v, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!((v.len() - 24) % 64, 0);
        let (s, x) = super::read_f32(&v).unwrap();
        assert_eq!(s, vec![2, 3]);
        assert_eq!(x, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }
}
