//! Writers for tests, fixtures and benchmarks: a GGUF writer, an APR v2 writer (aprender and
//! realizar flavours) and a Hugging Face checkpoint writer (SafeTensors, shards, model directory).
//! They write what real producers write, so a damaged copy differs from a clean one in exactly one
//! place.

pub mod apr;
pub mod convert;
pub mod generate;
pub mod gguf;
pub mod safetensors;
