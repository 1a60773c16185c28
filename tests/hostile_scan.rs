//! The deep scan on tensors whose rows hold no bytes (APR_Q8 with a last dim of 0: the 4-byte scale
//! and nothing else).

use apr_lint::format::Source;
use apr_lint::format::writer::apr::{AprTensor, AprWriter, Flavour};
use apr_lint::model::ModelView;
use apr_lint::numeric::scan::{Depth, run};
use apr_lint::quant::DType;

fn view(rows: u64, scale: f32) -> ModelView {
    let mut w = AprWriter::new(Flavour::Aprender);
    w.tensor(AprTensor::new(
        "t",
        vec![rows, 0],
        DType::AprQ8,
        scale.to_le_bytes().to_vec(),
    ));
    ModelView::from_source(Source::from_vec(w.to_bytes(), "q.apr")).expect("reads")
}

#[test]
fn deep_compare_of_zero_width_rows_does_not_panic() {
    let (a, b) = (view(3, 1.0), view(3, 2.0));
    let r = run(&a, Some(&b), &[(0, 0)], Depth::Deep, None);
    assert_eq!(r.files.len(), 2);
}

/// 2^60 empty rows are one chunk, not 2^42 of them.
#[test]
fn zero_width_rows_are_one_chunk() {
    let (a, b) = (view(1 << 60, 1.0), view(1 << 60, 2.0));
    let start = std::time::Instant::now();
    let r = run(&a, Some(&b), &[(0, 0)], Depth::Deep, None);
    assert_eq!(r.files.len(), 2);
    let r = run(&a, None, &[], Depth::Deep, None);
    assert_eq!(r.files.len(), 1);
    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
}
