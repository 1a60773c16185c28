//! Dequantization against ggml's own numbers.
//!
//! `fixtures/quant/<TYPE>.bin` is one real GGUF tensor (`blk.0.attn_k.weight`, dims [128, 256]);
//! `<TYPE>.npy` is what ggml's `to_float` made of it (see `fixtures/quant/README.md`). Every
//! value must match bit for bit. Types with no oracle data are checked on small hand-built blocks
//! whose values follow from the documented formula.

use std::path::PathBuf;

use apr_lint::quant::{
    DType, DequantError, block_scales_finite, dequantize, dequantize_block, dequantize_rows,
    dequantize_to_vec, header_scales_finite, row_n_bytes, tensor_n_bytes,
};

const ORACLE_TYPES: [&str; 14] = [
    "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
    "IQ4_NL", "IQ4_XS",
];
const DIMS: [u64; 2] = [128, 256];

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/quant")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Minimal NPY v1.0 reader: little-endian f32 (`<f4`), C order. Returns (shape, values).
fn read_npy_f32(bytes: &[u8]) -> (Vec<u64>, Vec<f32>) {
    assert_eq!(&bytes[..6], b"\x93NUMPY", "not an NPY file");
    assert_eq!((bytes[6], bytes[7]), (1, 0), "only NPY v1.0");
    let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).expect("ascii header");
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape_start = header.find("'shape': (").expect("shape") + "'shape': (".len();
    let shape_end = shape_start + header[shape_start..].find(')').expect("shape end");
    let shape: Vec<u64> = header[shape_start..shape_end]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("dim"))
        .collect();
    let data = &bytes[10 + header_len..];
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(
        values.len() as u64,
        shape.iter().product::<u64>(),
        "{header}"
    );
    (shape, values)
}

fn oracle(name: &str) -> (DType, Vec<u8>, Vec<f32>) {
    let dt = DType::from_name(name).expect(name);
    let data = fixture(&format!("{name}.bin"));
    let (shape, values) = read_npy_f32(&fixture(&format!("{name}.npy")));
    assert_eq!(shape, DIMS, "{name}");
    (dt, data, values)
}

/// Index of the first differing value, with both bit patterns, or None.
fn first_diff(got: &[f32], want: &[f32]) -> Option<(usize, u32, u32)> {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .position(|(a, b)| a.to_bits() != b.to_bits())
        .map(|i| (i, got[i].to_bits(), want[i].to_bits()))
}

fn f16_bytes(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_le_bytes()
}

#[test]
fn whole_tensor_matches_ggml_bit_for_bit() {
    for name in ORACLE_TYPES {
        let (dt, data, want) = oracle(name);
        assert_eq!(tensor_n_bytes(dt, &DIMS), Some(data.len() as u64), "{name}");
        let mut got = vec![f32::NAN; want.len()];
        dequantize(dt, &data, &DIMS, &mut got).expect(name);
        assert_eq!(first_diff(&got, &want), None, "{name}: (index, ours, ggml)");
        let got = dequantize_to_vec(dt, &data, &DIMS).expect(name);
        assert_eq!(first_diff(&got, &want), None, "{name} to_vec");
    }
}

#[test]
fn large_tensor_takes_parallel_path_and_matches() {
    // Four copies of the fixture stacked: 131072 values, above the single-thread cutoff.
    for name in ORACLE_TYPES {
        let (dt, data, want) = oracle(name);
        let data = data.repeat(4);
        let want = want.repeat(4);
        let got = dequantize_to_vec(dt, &data, &[4 * DIMS[0], DIMS[1]]).expect(name);
        assert_eq!(first_diff(&got, &want), None, "{name}");
        let got = dequantize_to_vec(dt, &data, &[2, 2 * DIMS[0], DIMS[1]]).expect(name);
        assert_eq!(first_diff(&got, &want), None, "{name} 3-d");
    }
}

#[test]
fn row_range_matches_ggml() {
    let cols = DIMS[1] as usize;
    for name in ORACLE_TYPES {
        let (dt, data, want) = oracle(name);
        for rows in [37..91u64, 0..1, 127..128, 5..5, 0..128] {
            let n = (rows.end - rows.start) as usize * cols;
            let mut got = vec![f32::NAN; n];
            dequantize_rows(dt, &data, &DIMS, rows.clone(), &mut got).expect(name);
            let want = &want[rows.start as usize * cols..rows.end as usize * cols];
            assert_eq!(first_diff(&got, want), None, "{name} rows {rows:?}");
        }
    }
}

#[test]
fn row_range_reads_only_its_rows() {
    // Poison every byte outside rows 10..20: the values of rows 10..20 must not change.
    let cols = DIMS[1] as usize;
    for name in ORACLE_TYPES {
        let (dt, data, want) = oracle(name);
        let row_bytes = row_n_bytes(dt, DIMS[1]).expect("fits") as usize;
        let mut poisoned = vec![0xFFu8; data.len()];
        poisoned[10 * row_bytes..20 * row_bytes]
            .copy_from_slice(&data[10 * row_bytes..20 * row_bytes]);
        let mut got = vec![0.0; 10 * cols];
        dequantize_rows(dt, &poisoned, &DIMS, 10..20, &mut got).expect(name);
        assert_eq!(
            first_diff(&got, &want[10 * cols..20 * cols]),
            None,
            "{name}"
        );
    }
}

#[test]
fn single_blocks_match_ggml() {
    for name in ORACLE_TYPES {
        let (dt, data, want) = oracle(name);
        let (bb, be) = (dt.block_bytes() as usize, dt.block_elems() as usize);
        assert_eq!(data.len() / bb * be, want.len(), "{name}");
        let mut got = vec![f32::NAN; be];
        for (k, block) in data.chunks_exact(bb).enumerate() {
            dequantize_block(dt, block, &mut got).expect(name);
            assert_eq!(
                first_diff(&got, &want[k * be..(k + 1) * be]),
                None,
                "{name} block {k}"
            );
            assert!(block_scales_finite(dt, block), "{name} block {k}");
        }
    }
}

#[test]
fn padded_rows_keep_the_head_of_the_last_block() {
    // Rows of 40 values in Q4_0/Q8_0/IQ4_NL: two blocks per row, the second holding 8 real
    // values and 24 of padding. Build rows from fixture blocks whose ggml values we know.
    for name in ["Q4_0", "Q8_0", "IQ4_NL", "Q4_K"] {
        let (dt, data, want) = oracle(name);
        let (bb, be) = (dt.block_bytes() as usize, dt.block_elems() as usize);
        let n_fixture_blocks = data.len() / bb;
        let cols = be + 8;
        for n_rows in [3usize, 1024] {
            let mut bytes = Vec::new();
            let mut expect = Vec::new();
            for r in 0..n_rows {
                for k in [(2 * r) % n_fixture_blocks, (2 * r + 1) % n_fixture_blocks] {
                    bytes.extend_from_slice(&data[k * bb..(k + 1) * bb]);
                }
                let first = (2 * r) % n_fixture_blocks;
                let second = (2 * r + 1) % n_fixture_blocks;
                expect.extend_from_slice(&want[first * be..(first + 1) * be]);
                expect.extend_from_slice(&want[second * be..second * be + 8]);
            }
            let dims = [n_rows as u64, cols as u64];
            assert_eq!(
                tensor_n_bytes(dt, &dims),
                Some(bytes.len() as u64),
                "{name}"
            );
            let got = dequantize_to_vec(dt, &bytes, &dims).expect(name);
            assert_eq!(first_diff(&got, &expect), None, "{name} {n_rows} rows");
            let mut part = vec![0.0; 2 * cols];
            dequantize_rows(dt, &bytes, &dims, 1..3, &mut part).expect(name);
            assert_eq!(
                first_diff(&part, &expect[cols..3 * cols]),
                None,
                "{name} rows 1..3"
            );
        }
    }
}

#[test]
fn plain_types_follow_the_cast() {
    let cases: [(DType, Vec<u8>, Vec<f32>); 8] = [
        (
            DType::F32,
            [1.5f32, -0.0, f32::INFINITY]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            vec![1.5, -0.0, f32::INFINITY],
        ),
        (
            DType::F64,
            [1.5f64, -2.25, 1e300, 0.1]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            vec![1.5, -2.25, f32::INFINITY, 0.1f64 as f32],
        ),
        (
            DType::I8,
            vec![0x80, 0xFF, 0, 127],
            vec![-128.0, -1.0, 0.0, 127.0],
        ),
        (
            DType::U8,
            vec![0x80, 0xFF, 0, 127],
            vec![128.0, 255.0, 0.0, 127.0],
        ),
        (
            DType::I16,
            [i16::MIN, -1, 300]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            vec![-32768.0, -1.0, 300.0],
        ),
        (
            DType::I32,
            [i32::MIN, -7, 16_777_217]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            vec![-2_147_483_648.0, -7.0, 16_777_216.0],
        ),
        (
            DType::I64,
            [i64::MIN, 5, -(1i64 << 40)]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            vec![-9.223_372e18, 5.0, -1_099_511_627_776.0],
        ),
        (
            DType::BF16,
            [0x3f80u16, 0xc0a0, 0x7f80]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            vec![1.0, -5.0, f32::INFINITY],
        ),
    ];
    for (dt, bytes, want) in cases {
        let n = want.len() as u64;
        let got = dequantize_to_vec(dt, &bytes, &[n]).expect("plain type");
        assert_eq!(first_diff(&got, &want), None, "{dt}");
        assert_eq!(tensor_n_bytes(dt, &[n]), Some(bytes.len() as u64), "{dt}");
    }
}

#[test]
fn q8_1_is_d_times_q() {
    // d = 0.5, s = 99 (ignored by values), qs = -16..16.
    let mut block = Vec::new();
    block.extend_from_slice(&f16_bytes(0.5));
    block.extend_from_slice(&f16_bytes(99.0));
    block.extend((-16i8..16).map(|q| q as u8));
    assert_eq!(block.len() as u64, DType::Q8_1.block_bytes());
    let want: Vec<f32> = (-16..16).map(|q| q as f32 * 0.5).collect();
    let got = dequantize_to_vec(DType::Q8_1, &block, &[32]).expect("q8_1");
    assert_eq!(first_diff(&got, &want), None);
}

#[test]
fn q8_k_is_d_times_q() {
    // d = 0.25 (f32), qs[i] = i - 128, bsums arbitrary.
    let mut block = Vec::new();
    block.extend_from_slice(&0.25f32.to_le_bytes());
    block.extend((0..256i32).map(|i| (i - 128) as i8 as u8));
    block.extend((0..16i16).flat_map(|i| (i * 1000).to_le_bytes()));
    assert_eq!(block.len() as u64, DType::Q8_K.block_bytes());
    let want: Vec<f32> = (0..256).map(|i| 0.25 * (i - 128) as f32).collect();
    let mut got = vec![0.0; 256];
    dequantize_block(DType::Q8_K, &block, &mut got).expect("q8_k");
    assert_eq!(first_diff(&got, &want), None);
}

#[test]
fn apr_q4_interleaves_nibbles() {
    // Byte i holds element 2i (low nibble = i) and 2i+1 (high nibble = 15 - i); scale 0.25.
    let mut block = f16_bytes(0.25).to_vec();
    block.extend((0..16u8).map(|i| i | ((15 - i) << 4)));
    let want: Vec<f32> = (0..16)
        .flat_map(|i| [(i - 8) as f32 * 0.25, (7 - i) as f32 * 0.25])
        .collect();
    let got = dequantize_to_vec(DType::AprQ4, &block, &[32]).expect("apr_q4");
    assert_eq!(first_diff(&got, &want), None);
    // Same bytes as Q4_0: elements 0..16 are the low nibbles instead.
    let q4_0 = dequantize_to_vec(DType::Q4_0, &block, &[32]).expect("q4_0");
    assert_eq!(q4_0[1], -1.75);
    assert_eq!(got[1], 1.75);
}

#[test]
fn apr_q8_has_one_tensor_scale() {
    // dims [2, 3]: header 0.5f32, then 6 int8.
    let qs: [i8; 6] = [-128, -1, 0, 1, 2, 127];
    let mut data = 0.5f32.to_le_bytes().to_vec();
    data.extend(qs.iter().map(|&q| q as u8));
    assert_eq!(tensor_n_bytes(DType::AprQ8, &[2, 3]), Some(10));
    assert_eq!(row_n_bytes(DType::AprQ8, 3), Some(3));
    let want: Vec<f32> = qs.iter().map(|&q| f32::from(q) * 0.5).collect();
    let got = dequantize_to_vec(DType::AprQ8, &data, &[2, 3]).expect("apr_q8");
    assert_eq!(first_diff(&got, &want), None);
    let mut row = [0.0; 3];
    dequantize_rows(DType::AprQ8, &data, &[2, 3], 1..2, &mut row).expect("row 1");
    assert_eq!(first_diff(&row, &want[3..]), None);
    assert_eq!(
        dequantize_block(DType::AprQ8, &data[4..5], &mut [0.0]),
        Err(DequantError::Unsupported(DType::AprQ8))
    );
    assert!(header_scales_finite(DType::AprQ8, &data));
    data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(!header_scales_finite(DType::AprQ8, &data));
    assert!(!header_scales_finite(DType::AprQ8, &data[..3]));
    assert!(header_scales_finite(DType::Q4_K, &[]));
}

#[test]
fn sizes() {
    assert_eq!(row_n_bytes(DType::Q4_K, 256), Some(144));
    assert_eq!(row_n_bytes(DType::Q4_0, 40), Some(36));
    assert_eq!(row_n_bytes(DType::Q4_0, 0), Some(0));
    assert_eq!(row_n_bytes(DType::F32, 7), Some(28));
    assert_eq!(row_n_bytes(DType::F64, u64::MAX), None);
    assert_eq!(
        row_n_bytes(DType::Q4_0, u64::MAX),
        Some(u64::MAX.div_ceil(32) * 18)
    );
    assert_eq!(tensor_n_bytes(DType::F32, &[]), Some(4));
    assert_eq!(tensor_n_bytes(DType::F16, &[5]), Some(10));
    assert_eq!(tensor_n_bytes(DType::Q6_K, &[128, 256]), Some(128 * 210));
    assert_eq!(tensor_n_bytes(DType::Q8_0, &[2, 3, 64]), Some(6 * 2 * 34));
    assert_eq!(tensor_n_bytes(DType::Q4_0, &[3, 40]), Some(3 * 36));
    assert_eq!(tensor_n_bytes(DType::F32, &[0, 5]), Some(0));
    assert_eq!(tensor_n_bytes(DType::AprQ8, &[0]), Some(4));
    assert_eq!(tensor_n_bytes(DType::AprQ8, &[]), Some(5));
    assert_eq!(tensor_n_bytes(DType::F32, &[u64::MAX]), None);
    assert_eq!(tensor_n_bytes(DType::F32, &[1 << 40, 1 << 40]), None);
    assert_eq!(tensor_n_bytes(DType::Q2_K, &[1 << 33, 1 << 31, 256]), None);
    assert_eq!(tensor_n_bytes(DType::AprQ8, &[u64::MAX]), None);
}

#[test]
fn ggml_type_table() {
    // (name, ggml id, block elems, block bytes) from ggml.h / ggml-common.h
    // (gguf-py GGMLQuantizationType and GGML_QUANT_SIZES, except Q8_1: see q8_1.rs).
    let ggml: [(&str, u32, u64, u64); 32] = [
        ("F32", 0, 1, 4),
        ("F16", 1, 1, 2),
        ("Q4_0", 2, 32, 18),
        ("Q4_1", 3, 32, 20),
        ("Q5_0", 6, 32, 22),
        ("Q5_1", 7, 32, 24),
        ("Q8_0", 8, 32, 34),
        ("Q8_1", 9, 32, 36),
        ("Q2_K", 10, 256, 84),
        ("Q3_K", 11, 256, 110),
        ("Q4_K", 12, 256, 144),
        ("Q5_K", 13, 256, 176),
        ("Q6_K", 14, 256, 210),
        ("Q8_K", 15, 256, 292),
        ("IQ2_XXS", 16, 256, 66),
        ("IQ2_XS", 17, 256, 74),
        ("IQ3_XXS", 18, 256, 98),
        ("IQ1_S", 19, 256, 50),
        ("IQ4_NL", 20, 32, 18),
        ("IQ3_S", 21, 256, 110),
        ("IQ2_S", 22, 256, 82),
        ("IQ4_XS", 23, 256, 136),
        ("I8", 24, 1, 1),
        ("I16", 25, 1, 2),
        ("I32", 26, 1, 4),
        ("I64", 27, 1, 8),
        ("F64", 28, 1, 8),
        ("IQ1_M", 29, 256, 56),
        ("BF16", 30, 1, 2),
        ("TQ1_0", 34, 256, 54),
        ("TQ2_0", 35, 256, 66),
        ("MXFP4", 39, 32, 17),
    ];
    for (name, id, elems, bytes) in ggml {
        let dt = DType::from_ggml_id(id).unwrap_or_else(|| panic!("id {id}"));
        assert_eq!(dt.name(), name);
        assert_eq!(dt.to_string(), name);
        assert_eq!(dt.ggml_id(), Some(id));
        assert_eq!(DType::from_name(name), Some(dt));
        assert_eq!(DType::from_name(&name.to_lowercase()), Some(dt));
        assert_eq!(
            (dt.block_elems(), dt.block_bytes()),
            (elems, bytes),
            "{name}"
        );
    }
    for id in [4, 5, 31, 32, 33, 36, 37, 38, 40, 41, 1000] {
        assert_eq!(DType::from_ggml_id(id), None, "id {id}");
    }
    assert_eq!(DType::all().len(), 35);
    for (name, dt) in [
        ("APR_Q4", DType::AprQ4),
        ("apr_q8", DType::AprQ8),
        ("U8", DType::U8),
    ] {
        assert_eq!(DType::from_name(name), Some(dt));
        assert_eq!(dt.ggml_id(), None);
    }
    assert_eq!(DType::from_name("Q4_K_M"), None);
    let floats: Vec<DType> = DType::all()
        .iter()
        .copied()
        .filter(|d| d.is_float())
        .collect();
    assert_eq!(floats, [DType::F32, DType::F16, DType::BF16, DType::F64]);
}

#[test]
fn apr_codes() {
    let code = |c| DType::apr_candidates(c).collect::<Vec<_>>();
    assert_eq!(code(3), [DType::F64, DType::Q4_1]);
    assert_eq!(code(8), [DType::Q8_0, DType::AprQ4]);
    assert_eq!(code(12), [DType::Q4_K]);
    assert_eq!(code(128), [DType::AprQ4]);
    assert_eq!(code(129), [DType::AprQ8]);
    assert_eq!(code(30), [DType::BF16]);
    assert!(code(200).is_empty());
}

#[test]
fn types_without_values_are_unsupported() {
    let no_values = [
        DType::IQ2_XXS,
        DType::IQ2_XS,
        DType::IQ3_XXS,
        DType::IQ1_S,
        DType::IQ3_S,
        DType::IQ2_S,
        DType::IQ1_M,
        DType::TQ1_0,
        DType::TQ2_0,
        DType::MXFP4,
    ];
    for dt in DType::all() {
        assert_eq!(dt.has_values(), !no_values.contains(dt), "{dt}");
    }
    for dt in no_values {
        let be = dt.block_elems();
        let data = vec![0u8; (2 * dt.block_bytes()) as usize];
        let unsupported = Err(DequantError::Unsupported(dt));
        assert_eq!(tensor_n_bytes(dt, &[2, be]), Some(data.len() as u64));
        assert_eq!(
            dequantize(dt, &data, &[2, be], &mut vec![0.0; 2 * be as usize]),
            unsupported
        );
        assert_eq!(
            dequantize_to_vec(dt, &data, &[2, be]),
            unsupported.clone().map(|()| vec![])
        );
        let mut row = vec![0.0; be as usize];
        assert_eq!(
            dequantize_rows(dt, &data, &[2, be], 0..1, &mut row),
            unsupported
        );
        let block = &data[..dt.block_bytes() as usize];
        assert_eq!(dequantize_block(dt, block, &mut row), unsupported);
        assert!(block_scales_finite(dt, block), "{dt}: zero scale is finite");
    }
}

#[test]
fn wrong_sizes_are_errors_not_panics() {
    let (dt, data, _) = oracle("Q4_K");
    let short = &data[..data.len() - 1];
    assert_eq!(
        dequantize_to_vec(dt, short, &DIMS),
        Err(DequantError::SizeMismatch {
            dtype: dt,
            dims: DIMS.to_vec(),
            expected: data.len() as u64,
            got: short.len() as u64
        })
    );
    let mut out = vec![0.0; 128 * 256];
    assert!(matches!(
        dequantize(dt, short, &DIMS, &mut out),
        Err(DequantError::SizeMismatch { .. })
    ));
    assert!(matches!(
        dequantize_rows(dt, short, &DIMS, 0..1, &mut out[..256]),
        Err(DequantError::SizeMismatch { .. })
    ));
    // Dims that do not fit the bytes, including an overflowing shape.
    assert!(matches!(
        dequantize_to_vec(dt, &data, &[127, 256]),
        Err(DequantError::SizeMismatch { .. })
    ));
    // [128, 255] is the same bytes: each row's one block is padded by a value.
    assert_eq!(
        dequantize_to_vec(dt, &data, &[128, 255]).map(|v| v.len()),
        Ok(128 * 255)
    );
    assert_eq!(
        dequantize_to_vec(dt, &data, &[u64::MAX, 256]),
        Err(DequantError::SizeMismatch {
            dtype: dt,
            dims: vec![u64::MAX, 256],
            expected: u64::MAX,
            got: data.len() as u64
        })
    );
    // Output buffer of the wrong length.
    assert_eq!(
        dequantize(dt, &data, &DIMS, &mut out[1..]),
        Err(DequantError::OutputSize {
            expected: 128 * 256,
            got: 128 * 256 - 1
        })
    );
    assert_eq!(
        dequantize_rows(dt, &data, &DIMS, 0..2, &mut out[..256]),
        Err(DequantError::OutputSize {
            expected: 512,
            got: 256
        })
    );
    // Row ranges outside the tensor or reversed.
    assert_eq!(
        dequantize_rows(dt, &data, &DIMS, 120..129, &mut out[..9 * 256]),
        Err(DequantError::RowRange {
            start: 120,
            end: 129,
            rows: 128
        })
    );
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 5..4;
    assert_eq!(
        dequantize_rows(dt, &data, &DIMS, reversed, &mut []),
        Err(DequantError::RowRange {
            start: 5,
            end: 4,
            rows: 128
        })
    );
    // Blocks of the wrong length.
    assert_eq!(
        dequantize_block(dt, &data[..143], &mut out[..256]),
        Err(DequantError::SizeMismatch {
            dtype: dt,
            dims: vec![256],
            expected: 144,
            got: 143
        })
    );
    assert_eq!(
        dequantize_block(dt, &data[..144], &mut out[..255]),
        Err(DequantError::OutputSize {
            expected: 256,
            got: 255
        })
    );
    let message = DequantError::SizeMismatch {
        dtype: dt,
        dims: vec![2],
        expected: 3,
        got: 4,
    };
    assert_eq!(
        message.to_string(),
        "data is 4 bytes, Q4_K with dims [2] needs 3"
    );
}

#[test]
fn non_finite_block_scales_are_spotted() {
    let nan = half::f16::NAN.to_le_bytes();
    let inf = half::f16::INFINITY.to_le_bytes();
    for name in ["Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q6_K", "Q2_K", "IQ4_XS"] {
        let (dt, data, _) = oracle(name);
        let bb = dt.block_bytes() as usize;
        // d sits at 0 except where the struct puts it last (Q2_K: 80, Q6_K: 208).
        let at = match name {
            "Q2_K" => 80,
            "Q6_K" => 208,
            _ => 0,
        };
        for bad in [nan, inf] {
            let mut block = data[..bb].to_vec();
            assert!(block_scales_finite(dt, &block), "{name}");
            block[at..at + 2].copy_from_slice(&bad);
            assert!(!block_scales_finite(dt, &block), "{name}");
            // Values are still produced (ggml does not check either): NaN/inf propagate.
            let mut out = vec![0.0; dt.block_elems() as usize];
            dequantize_block(dt, &block, &mut out).expect(name);
            assert!(out.iter().any(|v| !v.is_finite()), "{name}");
        }
    }
    // Q4_K's dmin, Q8_K's f32 d, MXFP4's E8M0 0xFF.
    let mut q4k = fixture("Q4_K.bin")[..144].to_vec();
    q4k[2..4].copy_from_slice(&nan);
    assert!(!block_scales_finite(DType::Q4_K, &q4k));
    let mut q8k = vec![0u8; 292];
    assert!(block_scales_finite(DType::Q8_K, &q8k));
    q8k[..4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    assert!(!block_scales_finite(DType::Q8_K, &q8k));
    let mut mxfp4 = vec![0u8; 17];
    assert!(block_scales_finite(DType::MXFP4, &mxfp4));
    mxfp4[0] = 0xFF;
    assert!(!block_scales_finite(DType::MXFP4, &mxfp4));
    // Plain types have no scales; a block too short to hold its scale is not finite.
    assert!(block_scales_finite(DType::F32, &f32::NAN.to_le_bytes()));
    assert!(!block_scales_finite(DType::Q4_0, &[0]));
}

#[test]
fn f16_widening_matches_ggml_for_every_bit_pattern() {
    // ggml_compute_fp16_to_fp32 (ggml-impl.h), the portable path ggml-base uses.
    fn ggml_fp16_to_fp32(h: u16) -> f32 {
        let w = u32::from(h) << 16;
        let sign = w & 0x8000_0000;
        let two_w = w.wrapping_add(w);
        let exp_offset = 0xE0u32 << 23;
        let exp_scale = f32::from_bits(0x0780_0000); // 0x1.0p-112f
        let normalized = f32::from_bits((two_w >> 4) + exp_offset) * exp_scale;
        let magic_mask = 126u32 << 23;
        let denormalized = f32::from_bits((two_w >> 17) | magic_mask) - 0.5;
        let cutoff = 1u32 << 27;
        f32::from_bits(
            sign | if two_w < cutoff {
                denormalized.to_bits()
            } else {
                normalized.to_bits()
            },
        )
    }
    let data: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
    let got = dequantize_to_vec(DType::F16, &data, &[65536]).expect("f16");
    for (h, v) in (0..=u16::MAX).zip(&got) {
        let want = ggml_fp16_to_fp32(h);
        if want.is_nan() {
            assert!(v.is_nan(), "{h:#06x}");
        } else {
            assert_eq!(v.to_bits(), want.to_bits(), "{h:#06x}");
        }
    }
}
