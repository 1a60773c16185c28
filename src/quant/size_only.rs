//! Types whose values apr-lint does not decode: their sizes (from the `block_*` structs and
//! `static_assert`s of `ggml-common.h`) and where their scales sit, so readers can check byte
//! counts and numeric checks can spot non-finite scales. `has_values()` is false for all of them.
//!
//! | type | elems | bytes | layout (offsets) |
//! |---|---|---|---|
//! | IQ2_XXS | 256 | 66  | d f16 @0, qs u16[32] @2 |
//! | IQ2_XS  | 256 | 74  | d f16 @0, qs u16[32] @2, scales[8] @66 |
//! | IQ3_XXS | 256 | 98  | d f16 @0, qs[96] @2 |
//! | IQ1_S   | 256 | 50  | d f16 @0, qs[32] @2, qh u16[8] @34 |
//! | IQ3_S   | 256 | 110 | d f16 @0, qs[64] @2, qh[8] @66, signs[32] @74, scales[4] @106 |
//! | IQ2_S   | 256 | 82  | d f16 @0, qs[64] @2, qh[8] @66, scales[8] @74 |
//! | IQ1_M   | 256 | 56  | qs[32] @0, qh[16] @32, scales u16[4] @48 (the f16 scale is their top nibbles) |
//! | TQ1_0   | 256 | 54  | qs[48] @0, qh[4] @48, d f16 @52 |
//! | TQ2_0   | 256 | 66  | qs[64] @0, d f16 @64 |
//! | MXFP4   | 32  | 17  | e E8M0 @0, qs[16] @1 |

use super::table::{Layout, ScaleField as S};

/// Elements per super-block (`QK_K` in `ggml-common.h`).
const QK_K: usize = 256;
/// Elements per MXFP4 block (`QK_MXFP4`).
const QK_MXFP4: usize = 32;

const IQ2_XXS_BYTES: usize = 66;
const IQ2_XS_BYTES: usize = 74;
const IQ3_XXS_BYTES: usize = 98;
const IQ1_S_BYTES: usize = 50;
const IQ3_S_BYTES: usize = 110;
const IQ2_S_BYTES: usize = 82;
const IQ1_M_BYTES: usize = 56;
const TQ1_0_BYTES: usize = 54;
const TQ2_0_BYTES: usize = 66;
const MXFP4_BYTES: usize = 17;

// The static_asserts of ggml-common.h, field by field.
const _: () = assert!(IQ2_XXS_BYTES == 2 + QK_K / 8 * 2);
const _: () = assert!(IQ2_XS_BYTES == 2 + QK_K / 8 * 2 + QK_K / 32);
const _: () = assert!(IQ3_XXS_BYTES == 2 + 3 * (QK_K / 8));
const _: () = assert!(IQ1_S_BYTES == 2 + QK_K / 8 + QK_K / 16);
const _: () = assert!(IQ3_S_BYTES == 2 + 13 * (QK_K / 32) + QK_K / 64);
const _: () = assert!(IQ2_S_BYTES == 2 + QK_K / 4 + QK_K / 16);
const _: () = assert!(IQ1_M_BYTES == QK_K / 8 + QK_K / 16 + QK_K / 32);
const _: () = assert!(TQ1_0_BYTES == 2 + QK_K / 64 + (QK_K - 4 * QK_K / 64) / 5);
const _: () = assert!(TQ2_0_BYTES == 2 + QK_K / 4);
const _: () = assert!(MXFP4_BYTES == 1 + QK_MXFP4 / 2);

pub(super) const IQ2_XXS: Layout = Layout::sizes_only(QK_K, IQ2_XXS_BYTES, &[S::F16(0)]);
pub(super) const IQ2_XS: Layout = Layout::sizes_only(QK_K, IQ2_XS_BYTES, &[S::F16(0)]);
pub(super) const IQ3_XXS: Layout = Layout::sizes_only(QK_K, IQ3_XXS_BYTES, &[S::F16(0)]);
pub(super) const IQ1_S: Layout = Layout::sizes_only(QK_K, IQ1_S_BYTES, &[S::F16(0)]);
pub(super) const IQ3_S: Layout = Layout::sizes_only(QK_K, IQ3_S_BYTES, &[S::F16(0)]);
pub(super) const IQ2_S: Layout = Layout::sizes_only(QK_K, IQ2_S_BYTES, &[S::F16(0)]);
pub(super) const IQ1_M: Layout = Layout::sizes_only(QK_K, IQ1_M_BYTES, &[S::Iq1mPacked(48)]);
pub(super) const TQ1_0: Layout = Layout::sizes_only(QK_K, TQ1_0_BYTES, &[S::F16(52)]);
pub(super) const TQ2_0: Layout = Layout::sizes_only(QK_K, TQ2_0_BYTES, &[S::F16(64)]);
pub(super) const MXFP4: Layout = Layout::sizes_only(QK_MXFP4, MXFP4_BYTES, &[S::E8M0(0)]);
