//! The dtype table: one row per element type, read by everyone who needs a dtype fact.
//!
//! A row holds the printed name, the GGUF (GGML) type id, the APR dtype codes that may carry the
//! type (see `apr-v2.md`, "Dtype codes": some codes mean different types to aprender and realizar,
//! so a code maps to several rows and the reader decides by byte size), the block geometry, the
//! decoder and where the block keeps its scale fields. Block sizes mirror ggml's `type_traits`
//! (`ggml/src/ggml.c`) and the `block_*` structs of `ggml/src/ggml-common.h`.

use std::fmt;

use super::{
    apr_q4, apr_q8, float, int, iq4_nl, iq4_xs, q2_k, q3_k, q4_0, q4_1, q4_k, q5_0, q5_1, q5_k,
    q6_k, q8_0, q8_1, q8_k, size_only,
};

/// Element type of a tensor, GGML's types plus APR's own. Variant order is table order.
///
/// `U8` exists only for APR code 7 as aprender reads it; GGML has no unsigned type.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (the upper half of an f32).
    BF16,
    /// IEEE 754 binary64.
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer (APR code 7 as aprender reads it).
    U8,
    /// ggml 4-bit, blocks of 32 with an f16 scale.
    Q4_0,
    /// ggml 4-bit, blocks of 32 with an f16 scale and minimum.
    Q4_1,
    /// ggml 5-bit, blocks of 32 with an f16 scale.
    Q5_0,
    /// ggml 5-bit, blocks of 32 with an f16 scale and minimum.
    Q5_1,
    /// ggml 8-bit, blocks of 32 with an f16 scale.
    Q8_0,
    /// ggml 8-bit, blocks of 32 with an f16 scale and the block's sum.
    Q8_1,
    /// ggml k-quant 2-bit, super-blocks of 256.
    Q2_K,
    /// ggml k-quant 3-bit, super-blocks of 256.
    Q3_K,
    /// ggml k-quant 4-bit, super-blocks of 256.
    Q4_K,
    /// ggml k-quant 5-bit, super-blocks of 256.
    Q5_K,
    /// ggml k-quant 6-bit, super-blocks of 256.
    Q6_K,
    /// ggml k-quant 8-bit, super-blocks of 256 with an f32 scale.
    Q8_K,
    /// ggml i-quant (sizes only: values not decoded).
    IQ2_XXS,
    /// ggml i-quant (sizes only: values not decoded).
    IQ2_XS,
    /// ggml i-quant (sizes only: values not decoded).
    IQ3_XXS,
    /// ggml i-quant (sizes only: values not decoded).
    IQ1_S,
    /// ggml 4-bit non-linear, blocks of 32.
    IQ4_NL,
    /// ggml i-quant (sizes only: values not decoded).
    IQ3_S,
    /// ggml i-quant (sizes only: values not decoded).
    IQ2_S,
    /// ggml 4-bit non-linear, super-blocks of 256.
    IQ4_XS,
    /// ggml i-quant (sizes only: values not decoded).
    IQ1_M,
    /// ggml ternary (sizes only: values not decoded).
    TQ1_0,
    /// ggml ternary (sizes only: values not decoded).
    TQ2_0,
    /// OCP microscaling FP4 (sizes only: values not decoded).
    MXFP4,
    /// APR's own 4-bit format.
    AprQ4,
    /// APR's own 8-bit format (a tensor-wide f32 scale header).
    AprQ8,
}

/// A scale field inside one block (or inside the tensor-wide header), by byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScaleField {
    /// IEEE half, little-endian.
    F16(usize),
    /// IEEE single, little-endian.
    F32(usize),
    /// OCP MX shared exponent: value 2^(e-127); ggml maps 0xFF to +inf (`GGML_E8M0_TO_FP32`).
    E8M0(usize),
    /// IQ1_M: an f16 assembled from the top nibbles of the four little-endian u16 at this offset
    /// (`iq1m_scale_t` in `dequantize_row_iq1_m`).
    Iq1mPacked(usize),
}

impl ScaleField {
    /// Is the field finite? `false` when `bytes` is too short to hold it.
    pub(crate) fn is_finite(self, bytes: &[u8]) -> bool {
        fn get<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
            bytes.get(at..at.checked_add(N)?)?.try_into().ok()
        }
        match self {
            ScaleField::F16(at) => {
                get::<2>(bytes, at).is_some_and(|b| half::f16::from_le_bytes(b).is_finite())
            }
            ScaleField::F32(at) => {
                get::<4>(bytes, at).is_some_and(|b| f32::from_le_bytes(b).is_finite())
            }
            ScaleField::E8M0(at) => get::<1>(bytes, at).is_some_and(|[e]| e != 0xFF),
            ScaleField::Iq1mPacked(at) => get::<8>(bytes, at).is_some_and(|b| {
                let sc = |i: usize| u16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
                let bits = (sc(0) >> 12)
                    | ((sc(1) >> 8) & 0x00f0)
                    | ((sc(2) >> 4) & 0x0f00)
                    | (sc(3) & 0xf000);
                half::f16::from_bits(bits).is_finite()
            }),
        }
    }
}

/// How a type's bytes become values.
#[derive(Clone, Copy)]
pub(crate) enum Decode {
    /// No dequantizer: sizes only.
    None,
    /// Whole blocks: `data.len() == k * block_bytes`, `out.len() == k * block_elems`.
    Blocks(fn(&[u8], &mut [f32])),
    /// Like `Blocks`, but every call also gets the tensor-wide header (`header_bytes` long).
    WithHeader(fn(&[u8], &[u8], &mut [f32])),
}

/// Block geometry, decoder and scale fields of one type: each layout file exports one.
#[derive(Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) block_elems: usize,
    pub(crate) block_bytes: usize,
    /// Bytes before the first block, once per tensor (APR_Q8's f32 scale).
    pub(crate) header_bytes: usize,
    pub(crate) decode: Decode,
    /// Scale fields of one block, offsets within the block.
    pub(crate) scales: &'static [ScaleField],
    /// Scale fields of the tensor-wide header, offsets within the header.
    pub(crate) header_scales: &'static [ScaleField],
}

impl Layout {
    /// A type decoded block by block.
    pub(crate) const fn blocks(
        block_elems: usize,
        block_bytes: usize,
        decode: fn(&[u8], &mut [f32]),
        scales: &'static [ScaleField],
    ) -> Layout {
        Layout {
            block_elems,
            block_bytes,
            header_bytes: 0,
            decode: Decode::Blocks(decode),
            scales,
            header_scales: &[],
        }
    }

    /// A type whose values this crate does not decode: sizes (and scale fields) only.
    pub(crate) const fn sizes_only(
        block_elems: usize,
        block_bytes: usize,
        scales: &'static [ScaleField],
    ) -> Layout {
        Layout {
            block_elems,
            block_bytes,
            header_bytes: 0,
            decode: Decode::None,
            scales,
            header_scales: &[],
        }
    }
}

/// One row of the table.
pub(crate) struct Row {
    pub(crate) dtype: DType,
    /// Printed name, the only spelling shown to users (gguf-py's `GGMLQuantizationType` names).
    pub(crate) name: &'static str,
    /// `enum ggml_type` value in `ggml.h`, also the GGUF tensor-info type.
    pub(crate) ggml_id: Option<u32>,
    /// APR v2 dtype codes under which some producer writes this type (`apr-v2.md`).
    pub(crate) apr_codes: &'static [u32],
    pub(crate) layout: Layout,
    pub(crate) is_float: bool,
}

const fn row(
    dtype: DType,
    name: &'static str,
    ggml_id: Option<u32>,
    apr_codes: &'static [u32],
    layout: Layout,
) -> Row {
    Row {
        dtype,
        name,
        ggml_id,
        apr_codes,
        layout,
        is_float: false,
    }
}

const fn float_row(
    dtype: DType,
    name: &'static str,
    id: u32,
    codes: &'static [u32],
    l: Layout,
) -> Row {
    Row {
        is_float: true,
        ..row(dtype, name, Some(id), codes, l)
    }
}

use DType as D;
use size_only as so;

/// Indexed by `DType as usize`; `table_order_matches_enum` checks the order.
static TABLE: [Row; 35] = [
    float_row(D::F32, "F32", 0, &[0], float::F32),
    float_row(D::F16, "F16", 1, &[1], float::F16),
    float_row(D::BF16, "BF16", 30, &[30], float::BF16),
    float_row(D::F64, "F64", 28, &[3], float::F64),
    row(D::I8, "I8", Some(24), &[6], int::I8),
    row(D::I16, "I16", Some(25), &[], int::I16),
    row(D::I32, "I32", Some(26), &[4], int::I32),
    row(D::I64, "I64", Some(27), &[5], int::I64),
    row(D::U8, "U8", None, &[7], int::U8),
    row(D::Q4_0, "Q4_0", Some(2), &[2], q4_0::LAYOUT),
    row(D::Q4_1, "Q4_1", Some(3), &[3], q4_1::LAYOUT),
    row(D::Q5_0, "Q5_0", Some(6), &[6], q5_0::LAYOUT),
    row(D::Q5_1, "Q5_1", Some(7), &[7], q5_1::LAYOUT),
    // Code 8 is Q8_0 to realizar only when the size is ceil(n/32)*34, else APR_Q4 (legacy).
    row(D::Q8_0, "Q8_0", Some(8), &[8], q8_0::LAYOUT),
    row(D::Q8_1, "Q8_1", Some(9), &[], q8_1::LAYOUT),
    row(D::Q2_K, "Q2_K", Some(10), &[10], q2_k::LAYOUT),
    row(D::Q3_K, "Q3_K", Some(11), &[11], q3_k::LAYOUT),
    row(D::Q4_K, "Q4_K", Some(12), &[12], q4_k::LAYOUT),
    row(D::Q5_K, "Q5_K", Some(13), &[13], q5_k::LAYOUT),
    row(D::Q6_K, "Q6_K", Some(14), &[14], q6_k::LAYOUT),
    row(D::Q8_K, "Q8_K", Some(15), &[], q8_k::LAYOUT),
    row(D::IQ2_XXS, "IQ2_XXS", Some(16), &[], so::IQ2_XXS),
    row(D::IQ2_XS, "IQ2_XS", Some(17), &[], so::IQ2_XS),
    row(D::IQ3_XXS, "IQ3_XXS", Some(18), &[], so::IQ3_XXS),
    row(D::IQ1_S, "IQ1_S", Some(19), &[], so::IQ1_S),
    row(D::IQ4_NL, "IQ4_NL", Some(20), &[], iq4_nl::LAYOUT),
    row(D::IQ3_S, "IQ3_S", Some(21), &[], so::IQ3_S),
    row(D::IQ2_S, "IQ2_S", Some(22), &[], so::IQ2_S),
    row(D::IQ4_XS, "IQ4_XS", Some(23), &[], iq4_xs::LAYOUT),
    row(D::IQ1_M, "IQ1_M", Some(29), &[], so::IQ1_M),
    row(D::TQ1_0, "TQ1_0", Some(34), &[], so::TQ1_0),
    row(D::TQ2_0, "TQ2_0", Some(35), &[], so::TQ2_0),
    row(D::MXFP4, "MXFP4", Some(39), &[], so::MXFP4),
    row(D::AprQ4, "APR_Q4", None, &[128, 8], apr_q4::LAYOUT),
    row(D::AprQ8, "APR_Q8", None, &[129, 9], apr_q8::LAYOUT),
];

static ALL: [DType; 35] = {
    let mut all = [DType::F32; 35];
    let mut i = 0;
    while i < 35 {
        all[i] = TABLE[i].dtype;
        i += 1;
    }
    all
};

impl DType {
    pub(crate) fn row(self) -> &'static Row {
        // Invariant: TABLE is in enum order (checked by `table_order_matches_enum`).
        &TABLE[self as usize]
    }

    /// Printed name: `F32`, `Q4_K`, `IQ4_XS`, `APR_Q4` …
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Dtype by printed name, ASCII case-insensitive.
    pub fn from_name(s: &str) -> Option<DType> {
        TABLE
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(s))
            .map(|r| r.dtype)
    }

    /// Dtype by GGML / GGUF type id (`enum ggml_type`). Ids ggml has but this table lacks
    /// (removed Q4_2/Q4_3 = 4/5, NVFP4 = 40, Q1_0 = 41, …) give `None`.
    pub fn from_ggml_id(id: u32) -> Option<DType> {
        TABLE
            .iter()
            .find(|r| r.ggml_id == Some(id))
            .map(|r| r.dtype)
    }

    /// GGML / GGUF type id; `None` for APR-only types and `U8`.
    pub fn ggml_id(self) -> Option<u32> {
        self.row().ggml_id
    }

    /// APR v2 dtype codes under which some producer writes this type (may be empty).
    pub fn apr_codes(self) -> &'static [u32] {
        self.row().apr_codes
    }

    /// Every dtype some producer writes under APR code `code`, in table order. Several types
    /// share codes (code 3 is F64 to aprender, Q4_1 to realizar): decide by byte size.
    pub fn apr_candidates(code: u32) -> impl Iterator<Item = DType> {
        TABLE
            .iter()
            .filter(move |r| r.apr_codes.contains(&code))
            .map(|r| r.dtype)
    }

    /// Elements per block: 1 for plain types, 32 for Q4_0, 256 for K-quants.
    pub fn block_elems(self) -> u64 {
        self.row().layout.block_elems as u64
    }

    /// Bytes per block. APR_Q8 also has a 4-byte tensor-wide header, see [`tensor_n_bytes`](super::tensor_n_bytes).
    pub fn block_bytes(self) -> u64 {
        self.row().layout.block_bytes as u64
    }

    /// Bytes stored once per tensor before the first block (4 for APR_Q8, else 0).
    pub fn header_bytes(self) -> u64 {
        self.row().layout.header_bytes as u64
    }

    /// Does this crate dequantize the type? `false` for IQ1/IQ2/IQ3, TQ and MXFP4 (sizes only).
    pub fn has_values(self) -> bool {
        !matches!(self.row().layout.decode, Decode::None)
    }

    /// Is every value of a block finite whenever the block's scale fields are? True for block
    /// types whose scales are all f16 and whose other fields are small integers (Q4_0 … Q6_K,
    /// IQ4_NL, IQ4_XS, APR_Q4): a value is at most 65504 · 63 · 127 plus as much for a minimum in
    /// magnitude, far inside f32. False for plain floats (the values are the data), integers
    /// (always finite, no scales), types with an f32 scale (Q8_K, APR_Q8: a finite scale times a
    /// quant can overflow) and types without a dequantizer.
    pub fn finite_when_scales_finite(self) -> bool {
        let l = self.row().layout;
        l.block_elems > 1
            && matches!(l.decode, Decode::Blocks(_))
            && !l.scales.is_empty()
            && l.header_scales.is_empty()
            && l.scales.iter().all(|s| matches!(s, ScaleField::F16(_)))
    }

    /// F32, F16, BF16 or F64.
    pub fn is_float(self) -> bool {
        self.row().is_float
    }

    /// Every dtype, in table order.
    pub fn all() -> &'static [DType] {
        &ALL
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan of `--deep` tests only the scales of these types: with every f16 scale at ±65504
    /// (the largest finite f16) and random other bytes, every value must still be finite.
    #[test]
    fn finite_scales_bound_the_values_of_the_types_that_claim_it() {
        let claim: Vec<DType> = ALL
            .iter()
            .copied()
            .filter(|d| d.finite_when_scales_finite())
            .collect();
        use DType as D;
        assert_eq!(
            claim,
            [
                D::Q4_0,
                D::Q4_1,
                D::Q5_0,
                D::Q5_1,
                D::Q8_0,
                D::Q8_1,
                D::Q2_K,
                D::Q3_K,
                D::Q4_K,
                D::Q5_K,
                D::Q6_K,
                D::IQ4_NL,
                D::IQ4_XS,
                D::AprQ4
            ]
        );
        for dt in claim {
            let l = dt.row().layout;
            for seed in 0..4u64 {
                let mut blocks = crate::quant::bench_support_random_blocks(dt, 256, seed);
                for (k, b) in blocks.chunks_exact_mut(l.block_bytes).enumerate() {
                    for s in l.scales {
                        let ScaleField::F16(at) = *s else {
                            unreachable!()
                        };
                        let v: u16 = if (k + at) % 2 == 0 { 0x7bff } else { 0xfbff };
                        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
                    }
                    let mut out = vec![0f32; l.block_elems];
                    crate::quant::dequantize_block(dt, b, &mut out).expect("decodes");
                    assert!(out.iter().all(|x| x.is_finite()), "{dt} block {k}: {out:?}");
                }
            }
        }
        // An f32 scale does not bound them: Q8_K with d = 3e38 overflows.
        let mut b = crate::quant::bench_support_random_blocks(D::Q8_K, 1, 0);
        b[..4].copy_from_slice(&3.0e38f32.to_le_bytes());
        b[4] = 100;
        let mut out = vec![0f32; 256];
        crate::quant::dequantize_block(D::Q8_K, &b, &mut out).expect("decodes");
        assert!(out[0].is_infinite());
    }

    #[test]
    fn table_order_matches_enum() {
        for (i, r) in TABLE.iter().enumerate() {
            assert_eq!(r.dtype as usize, i, "row {} out of order", r.name);
        }
    }

    #[test]
    fn names_and_ids_are_unique() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert!(!a.name.eq_ignore_ascii_case(b.name), "{}", a.name);
                assert!(a.ggml_id.is_none() || a.ggml_id != b.ggml_id, "{}", a.name);
            }
        }
    }

    #[test]
    fn block_geometry_is_sane() {
        for r in &TABLE {
            let l = r.layout;
            assert!(l.block_elems >= 1 && l.block_elems <= super::super::dequant::MAX_BLOCK_ELEMS);
            assert!(l.block_bytes >= 1);
            for s in l.scales {
                let (ScaleField::F16(at)
                | ScaleField::F32(at)
                | ScaleField::E8M0(at)
                | ScaleField::Iq1mPacked(at)) = *s;
                assert!(at < l.block_bytes, "{}", r.name);
            }
        }
    }
}
