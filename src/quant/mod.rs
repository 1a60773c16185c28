//! Element types and dequantization.
//!
//! Takes a dtype, a tensor's raw bytes and its canonical dims (outermost first, last dim
//! contiguous); returns sizes, f32 values and scale sanity. Every dtype fact lives in one row of
//! `table`; each block layout has its own file that documents the bytes and mirrors the ggml
//! function it reproduces bit for bit (values are checked against ggml's own `to_float` in
//! `tests/dequant.rs`). Must not: read files, know tensor names or roles, print, or cast bytes
//! to structs (blocks are decoded from byte chunks with `from_le_bytes`).

mod apr_q4;
mod apr_q8;
mod bench;
mod blocks;
mod dequant;
pub mod dot;
mod float;
mod int;
mod iq4_nl;
mod iq4_xs;
mod q2_k;
mod q3_k;
mod q4_0;
mod q4_1;
mod q4_k;
mod q5_0;
mod q5_1;
mod q5_k;
mod q6_k;
mod q8_0;
mod q8_1;
mod q8_k;
pub(crate) mod q8k_fast;
mod size_only;
mod table;

#[doc(hidden)]
pub use bench::bench_support_random_blocks;
pub use dequant::{
    DequantError, block_scales_finite, count_bad_scale_blocks, dequantize, dequantize_block,
    dequantize_rows, dequantize_rows_serial, dequantize_to_vec, header_scales_finite, row_n_bytes,
    tensor_n_bytes,
};
pub use table::DType;
