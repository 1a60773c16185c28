//! Overlapping tensors must be refused even when a zero-size tensor sits between them in offset
//! order (the neighbour-only comparison skipped every pair with an empty side).

use apr_lint::format::Source;
use apr_lint::format::gguf;
use apr_lint::format::writer::gguf::{GgufTensor, GgufWriter};
use apr_lint::quant::DType;

#[test]
fn gguf_overlap_hidden_behind_an_empty_tensor_is_refused() {
    let mut w = GgufWriter::new();
    w.tensor(GgufTensor::new("a", vec![64], DType::F32, vec![0u8; 256]));
    let mut z = GgufTensor::new("z", vec![0], DType::F32, Vec::new());
    z.offset_override = Some(32);
    w.tensor(z);
    let mut b = GgufTensor::new("b", vec![8], DType::F32, vec![0u8; 32]);
    b.offset_override = Some(64);
    w.tensor(b);
    let e = gguf::read(Source::from_vec(w.to_bytes(), "o.gguf")).expect_err("overlap");
    assert_eq!(e.code(), "APRL-F018", "{e:?}");
}

#[test]
fn gguf_empty_tensors_beside_others_still_read() {
    let mut w = GgufWriter::new();
    w.tensor(GgufTensor::new("a", vec![8], DType::F32, vec![0u8; 32]));
    w.tensor(GgufTensor::new("z", vec![0], DType::F32, Vec::new()));
    w.tensor(GgufTensor::new("b", vec![8], DType::F32, vec![0u8; 32]));
    gguf::read(Source::from_vec(w.to_bytes(), "ok.gguf")).expect("reads");
}
