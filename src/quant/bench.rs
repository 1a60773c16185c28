//! Random but valid tensor bytes for benchmarks: every scale field finite, every value decodable.

use super::table::{DType, ScaleField};

/// `n_blocks` random blocks of `dt` (plus APR_Q8's 4-byte header), reproducible from `seed`.
///
/// Quant bits are uniform random; block scales are finite positive values in [1e-3, 1e-2)
/// (E8M0 exponents in 2^-27..2^3); plain float elements are uniform in [-1, 1), integers uniform.
/// The bytes are not a quantization of anything: use them for timing and path comparisons only.
pub fn bench_support_random_blocks(dt: DType, n_blocks: u64, seed: u64) -> Vec<u8> {
    let layout = dt.row().layout;
    let block_bytes = layout.block_bytes;
    let n_blocks = usize::try_from(n_blocks).expect("benchmark block count fits in memory");
    let len = n_blocks
        .checked_mul(block_bytes)
        .and_then(|n| n.checked_add(layout.header_bytes))
        .expect("benchmark byte count fits in memory");
    let mut rng = SplitMix64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut bytes = vec![0u8; len];
    for chunk in bytes.chunks_mut(8) {
        let r = rng.next().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    let (header, body) = bytes.split_at_mut(layout.header_bytes);
    for field in layout.header_scales {
        write_scale(*field, header, &mut rng);
    }
    for block in body.chunks_exact_mut(block_bytes) {
        if dt.is_float() {
            let x = rng.unit() * 2.0 - 1.0;
            match block_bytes {
                2 if dt == DType::BF16 => {
                    block.copy_from_slice(&((x as f32).to_bits() >> 16).to_le_bytes()[..2]);
                }
                2 => block.copy_from_slice(&half::f16::from_f64(x).to_le_bytes()),
                4 => block.copy_from_slice(&(x as f32).to_le_bytes()),
                _ => block.copy_from_slice(&x.to_le_bytes()[..block.len()]),
            }
        }
        for field in layout.scales {
            write_scale(*field, block, &mut rng);
        }
    }
    bytes
}

fn write_scale(field: ScaleField, bytes: &mut [u8], rng: &mut SplitMix64) {
    let scale = 1e-3 + rng.unit() * 9e-3;
    match field {
        ScaleField::F16(at) => {
            bytes[at..at + 2].copy_from_slice(&half::f16::from_f64(scale).to_le_bytes());
        }
        ScaleField::F32(at) => bytes[at..at + 4].copy_from_slice(&(scale as f32).to_le_bytes()),
        ScaleField::E8M0(at) => bytes[at] = 100 + (rng.next() % 31) as u8,
        ScaleField::Iq1mPacked(at) => {
            // The f16 is spread over the top nibbles of four u16: keep the low 12 bits random.
            let bits = half::f16::from_f64(scale).to_bits();
            for i in 0..4 {
                let p = at + 2 * i;
                let low = u16::from_le_bytes([bytes[p], bytes[p + 1]]) & 0x0fff;
                let word = low | (((bits >> (4 * i)) & 0xf) << 12);
                bytes[p..p + 2].copy_from_slice(&word.to_le_bytes());
            }
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, seedable, good enough for test bytes.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_blocks_have_finite_scales_and_values() {
        for &dt in DType::all() {
            let data = bench_support_random_blocks(dt, 7, 42);
            assert_eq!(
                data.len() as u64,
                7 * dt.block_bytes() + dt.header_bytes(),
                "{dt}"
            );
            assert!(super::super::header_scales_finite(dt, &data), "{dt}");
            let body = &data[dt.header_bytes() as usize..];
            for block in body.chunks_exact(dt.block_bytes() as usize) {
                assert!(super::super::block_scales_finite(dt, block), "{dt}");
            }
            if dt.has_values() {
                let dims = [7 * dt.block_elems()];
                let values = super::super::dequantize_to_vec(dt, &data, &dims).expect("valid");
                assert!(values.iter().all(|v| v.is_finite()), "{dt}");
            }
            assert_eq!(
                data,
                bench_support_random_blocks(dt, 7, 42),
                "{dt} not reproducible"
            );
        }
    }
}
