//! Container lints (`APRL-F…`): the codes the readers raise, as `ReadError` (the file cannot be
//! trusted) or as `Finding` (readable, but worth saying). One constant per code, in code order;
//! `registry.rs` lists them for `explain`, the rule listing and SARIF.

use crate::diag::Lint;

use crate::diag::lint;

lint!(IO, "APRL-F001", "container", Error, "the file cannot be opened or read",
"What it catches: a path that does not exist, a directory, a file without read permission, an I/O error while mapping it, or a read of its tensor bytes that fails (a file that shrank after it was opened): the finding gives the byte offset of the read.
Why it matters: nothing can be checked.
How to fix: pass the path of a regular, readable model file.
Precedent: pre-commit hooks run on deleted or renamed files.");

lint!(UNKNOWN_FORMAT, "APRL-F002", "container", Error, "the file is neither GGUF, APR nor SafeTensors",
"What it catches: the first bytes match no known magic (`GGUF`, `APR\\0`, `APRN`, `APR1`, `APR2`) and are not a SafeTensors header (an 8-byte length that fits the file, then `{`).
Why it matters: the file is not a model apr-lint can read; a renamed PyTorch file is the usual case.
How to fix: pass a GGUF, an APR, or a Hugging Face checkpoint (its directory, `model.safetensors` or `model.safetensors.index.json`); convert a PyTorch `.bin` checkpoint to SafeTensors first.
Precedent: `.apr` files that were really SafeTensors after a failed conversion.");

lint!(
    EMPTY,
    "APRL-F003",
    "container",
    Error,
    "the file is empty",
    "What it catches: a 0-byte file.
Why it matters: usually an interrupted download or a failed write.
How to fix: download or convert again.
Precedent: a converter that crashed after creating its output."
);

lint!(
    LFS_POINTER,
    "APRL-F004",
    "container",
    Error,
    "the file is a Git LFS pointer, not a model",
    "What it catches: a small text file starting `version https://git-lfs.github.com/spec/v1`.
Why it matters: the repository was cloned without `git lfs pull`; the model bytes are missing.
How to fix: run `git lfs pull` (or `git lfs fetch && git lfs checkout`) and lint again.
Precedent: pre-commit and CI jobs on repositories cloned without LFS."
);

lint!(VERSION, "APRL-F005", "container", Error, "the container version is not supported",
"What it catches: GGUF v1 (unaligned, 32-bit counts) or a version newer than 3; APR with a major version other than 2; the legacy APR1 (JSON index) and APRN (APR v1, classical ML) containers.
Why it matters: the layout differs; reading it as v2/v3 would misread every field.
How to fix: re-convert with a current converter (llama.cpp's `convert_hf_to_gguf.py`, `apr import`).
Precedent: llama.cpp dropped GGUF v1 in 2023; aprender refuses APR1 for inference.");

lint!(BIG_ENDIAN, "APRL-F006", "container", Error, "the GGUF file is big-endian",
"What it catches: a GGUF whose version field only makes sense byte-swapped (written on or for s390x).
Why it matters: every number in the file would be misread on a little-endian machine.
How to fix: convert with `gguf-py`'s endian tool (`gguf_convert_endian.py model.gguf little`).
Precedent: llama.cpp's big-endian model releases.");

lint!(TRUNCATED, "APRL-F007", "container", Error, "a count, length or section runs past the end of the file",
"What it catches: a string, array, tensor table, index or data region that needs more bytes than the file has left.
Why it matters: a truncated download is the classic case; a loader that trusts the count reads garbage or crashes.
How to fix: download or convert the file again and compare its size with the source's.
Precedent: llama.cpp \"tensor data is not within the file bounds\"; ggml's `gguf.cpp` checks every count against the bytes left.");

lint!(
    DUPLICATE_KEY,
    "APRL-F008",
    "container",
    Error,
    "a metadata key occurs twice",
    "What it catches: the same key twice in GGUF metadata (or in APR's JSON metadata).
Why it matters: loaders disagree on which value wins; ggml refuses the file.
How to fix: rewrite the metadata with each key once.
Precedent: ggml `gguf.cpp` \"duplicate key\"."
);

lint!(
    DUPLICATE_TENSOR,
    "APRL-F009",
    "container",
    Error,
    "a tensor name occurs twice",
    "What it catches: two tensor records with the same name.
Why it matters: one of them is silently ignored by every loader.
How to fix: fix the converter's name mapping; two source tensors were mapped to one name.
Precedent: ggml `gguf.cpp` \"duplicate tensor name\"; aprender rejects duplicate index entries."
);

lint!(
    NAME_TOO_LONG,
    "APRL-F010",
    "container",
    Error,
    "a GGUF tensor name is 64 bytes or longer",
    "What it catches: a tensor name of GGML_MAX_NAME (64) bytes or more.
Why it matters: ggml stores names in a 64-byte buffer and refuses the file.
How to fix: shorten the name in the converter.
Precedent: ggml `gguf.cpp` \"tensor name is too long\"."
);

lint!(
    TOO_MANY_DIMS,
    "APRL-F011",
    "container",
    Error,
    "a tensor has more dimensions than the format allows",
    "What it catches: GGUF n_dims > 4 (GGML_MAX_DIMS) or APR ndim > 8.
Why it matters: loaders refuse it, and a huge ndim is usually a corrupt record.
How to fix: re-convert; reshape the tensor to at most 4 dims.
Precedent: ggml `gguf.cpp` \"number of dimensions exceeds GGML_MAX_DIMS\"."
);

lint!(
    BAD_DIMS,
    "APRL-F012",
    "container",
    Error,
    "a tensor dimension is negative or the element count overflows",
    "What it catches: a negative `ne` or dims whose product overflows 63 bits.
Why it matters: sizes computed from them are meaningless.
How to fix: re-convert; the tensor record is corrupt.
Precedent: ggml `gguf.cpp` overflow checks on `ne`."
);

lint!(UNKNOWN_DTYPE, "APRL-F013", "container", Error, "a tensor type id is unknown",
"What it catches: a GGML type id no ggml version defines (or a removed one), or an APR dtype code no loader reads.
Why it matters: the tensor's size and values cannot be known.
How to fix: re-convert with a known type, or upgrade apr-lint if the type is new.
Precedent: ggml `gguf.cpp` \"tensor has invalid ggml type\".");

lint!(BLOCK_MISALIGNED, "APRL-F014", "container", Error, "a row length is not a multiple of the quantization block",
"What it catches: a quantized GGUF tensor whose `ne[0]` (its row length) is not a multiple of the type's block size.
Why it matters: blocks would cross rows; ggml refuses the file.
How to fix: quantize that tensor to a type whose block divides the row, or keep it in F16/F32.
Precedent: ggml `gguf.cpp` \"tensor ... number of elements ... is not a multiple of block size\"; llama-quantize falls back for K-quants on rows % 256 != 0.");

lint!(
    BAD_ALIGNMENT,
    "APRL-F015",
    "container",
    Error,
    "the declared alignment is not a power of two",
    "What it catches: `general.alignment` zero, not a power of two, or not a u32.
Why it matters: every tensor offset depends on it.
How to fix: remove the key (default 32) or set a power of two.
Precedent: ggml `gguf.cpp` \"alignment ... is not a power of 2\"."
);

lint!(OFFSET_MISALIGNED, "APRL-F016", "container", Error, "a tensor's data offset is not aligned",
"What it catches: a GGUF tensor offset that is not a multiple of the file's alignment, or an APR tensor offset not a multiple of 64.
Why it matters: mmap-based loaders require aligned tensor data.
How to fix: re-write the file with padding between tensors.
Precedent: ggml `gguf.cpp` alignment check; APR's 64-byte alignment rule.");

lint!(OUT_OF_BOUNDS, "APRL-F017", "container", Error, "a tensor's data lies outside the file",
"What it catches: a tensor whose offset + size runs past the data section or the end of the file.
Why it matters: a truncated download or a wrong offset; loaders read past the end.
How to fix: download or convert again.
Precedent: llama.cpp \"tensor data is not within the file bounds\".");

lint!(
    OVERLAP,
    "APRL-F018",
    "container",
    Error,
    "two tensors' data overlap",
    "What it catches: two tensors whose byte ranges share bytes.
Why it matters: writing one corrupts the other; at least one of them holds the wrong values.
How to fix: fix the writer's offset arithmetic.
Precedent: APR writers that computed offsets from unpadded sizes."
);

lint!(NON_CONTIGUOUS, "APRL-F019", "container", Warning, "tensor data is not laid out contiguously in declaration order",
"What it catches: a GGUF whose tensors are aligned and disjoint but not packed one after another in the order of the tensor table.
Why it matters: the GGUF spec allows it, but ggml's own loader requires the packed order and refuses the file.
How to fix: rewrite the file with gguf-py or llama.cpp so tensors are packed in table order.
Precedent: ggml `gguf.cpp` \"tensor ... has offset ..., expected ...\".");

lint!(TRAILING_BYTES, "APRL-F020", "container", Warning, "bytes after the last tensor",
"What it catches: data past the end of the last tensor (beyond padding, and beyond APR's 4-byte footer).
Why it matters: often a concatenation or a partial overwrite; loaders ignore it.
How to fix: truncate the file at the end of the data, or re-convert.
Precedent: files appended to by a second, interrupted write.");

lint!(
    BAD_UTF8,
    "APRL-F021",
    "container",
    Error,
    "a name or string is not valid UTF-8",
    "What it catches: a key, tensor name or string value whose bytes are not UTF-8.
Why it matters: the formats require UTF-8; loaders refuse or mangle the name.
How to fix: re-convert.
Precedent: corrupt headers after a bit flip."
);

lint!(BAD_VALUE_TYPE, "APRL-F022", "container", Error, "a metadata value has an unknown or wrong type",
"What it catches: a GGUF value type id that does not exist, a nested array, or a well-known key (like `general.alignment`) with the wrong type.
Why it matters: the rest of the metadata cannot be parsed.
How to fix: re-write the metadata with gguf-py.
Precedent: ggml `gguf.cpp` \"key ... has wrong type\".");

lint!(HEADER_CRC, "APRL-F023", "container", Error, "the APR header CRC does not match",
"What it catches: an APR header whose CRC-32 (over bytes 0..40 and 44..64) differs from the stored one.
Why it matters: the header was corrupted or edited; aprender refuses the file (realizar does not check).
How to fix: re-convert, or recompute the CRC if the header was edited on purpose.
Precedent: aprender's header validation.");

lint!(APR_V1, "APRL-F024", "container", Error, "APR v1 (classical ML): no tensors to check",
"What it catches: an `APRN` file: aprender's classical-ML blob (MessagePack metadata + bincode payload).
Why it matters: it has no tensor index; it is not a language model.
How to fix: nothing to lint; pass an APR v2 model.
Precedent: aprender's first container format.");

lint!(
    APR_LEGACY_MAGIC,
    "APRL-F025",
    "container",
    Warning,
    "legacy `APR2` magic",
    "What it catches: an APR v2 file whose magic is `APR2` instead of `APR\\0`.
Why it matters: realizar reads it, aprender's own reader rejects it.
How to fix: rewrite the magic as `APR\\0` (recompute the header CRC).
Precedent: early realizar writers."
);

lint!(APR_JSON_INDEX, "APRL-F026", "container", Error, "old JSON-index APR variant",
"What it catches: an `APR\\0` file whose tensor index starts with `[`: old realizar's single-tensor JSON index.
Why it matters: no current loader reads it.
How to fix: re-convert with a current `apr import`.
Precedent: realizar's first APR writer.");

lint!(
    APR_METADATA_JSON,
    "APRL-F027",
    "container",
    Error,
    "APR metadata is not a JSON object",
    "What it catches: metadata bytes that are not UTF-8 JSON, or JSON that is not an object.
Why it matters: the model config cannot be read.
How to fix: re-convert.
Precedent: truncated metadata after a failed write."
);

lint!(
    APR_INDEX_ORDER,
    "APRL-F028",
    "container",
    Error,
    "the APR tensor index is not sorted by name",
    "What it catches: index entries out of byte order of their names.
Why it matters: aprender rejects the file; realizar reads it.
How to fix: sort the index by name (payload order can stay as is).
Precedent: aprender's index validation."
);

lint!(FOOTER_CRC, "APRL-F029", "container", Error, "the APR footer CRC does not match",
"What it catches: a 4-byte footer present but not equal to the CRC-32 of every preceding byte.
Why it matters: some bytes changed after writing (nobody upstream verifies it, so the file may still load with corrupt values).
How to fix: re-convert, or compare the file's checksum with the source.
Precedent: aprender writes the footer; no loader checks it.");

lint!(APR_UNSUPPORTED_FLAGS, "APRL-F030", "container", Error, "APR flags say compressed, encrypted or column-major",
"What it catches: LZ4 (0x1), ZSTD (0x2) or ENCRYPTED (0x4) flags, which no current writer produces and apr-lint cannot read through.
Why it matters: the index and data cannot be read as stored.
How to fix: write the file uncompressed.
Precedent: realizar treats such files as one compressed blob.");

lint!(SIZE_MISMATCH, "APRL-F031", "container", Error, "a tensor's byte size does not match its dtype and dims",
"What it catches: an APR index entry whose `size` is not what its dtype needs for its dims, including 0 bytes for a tensor with elements (only the output matrix, `lm_head.weight`/`output.weight`, may be a 0-byte tied-embedding placeholder: APRL-M010).
Why it matters: the tensor is truncated, padded wrongly, or labelled with the wrong dtype.
How to fix: check the dtype label; if the dtype is right, the converter wrote the wrong number of bytes.
Precedent: aprender PR #1601 (BF16 bytes labelled F16), quantizers that padded blocks across rows.");

lint!(APR_HEADER_FIELD, "APRL-F032", "container", Error, "an APR header field is inconsistent",
"What it catches: a metadata, index or data offset that is out of order, unaligned or past the end of the file.
Why it matters: the sections of the file cannot be located.
How to fix: re-convert.
Precedent: hand-edited or truncated APR files.");

lint!(APR_INDEX_TRAILING, "APRL-F033", "container", Error, "the APR index has bytes left after its last entry",
"What it catches: non-zero bytes between the last index entry and the data offset, i.e. the index holds fewer entries than the bytes it spans.
Why it matters: realizar silently stops at the first malformed entry and loses tensors.
How to fix: re-convert; the tensor count and the index disagree.
Precedent: realizar's index parser.");

lint!(
    APR_PADDING,
    "APRL-F034",
    "container",
    Warning,
    "APR padding bytes are not zero",
    "What it catches: non-zero bytes in the padding after the metadata, or after a tensor's data up to the next 64-byte boundary (including a file that ends inside its last tensor's padding).
Why it matters: harmless to loaders but a sign of a corrupt or overwritten file.
How to fix: re-convert.
Precedent: —"
);

lint!(APR_FLAGS_NOTE, "APRL-F035", "container", Info, "APR flags and footer as found",
"What it catches: notes what the flags say about the producer (aprender 0x0400, realizar 0x0020) and whether a footer is present.
Why it matters: lets a reader of the report know which writer made the file.
How to fix: nothing.
Precedent: —");

lint!(COUNT_OVERRUNS, "APRL-F040", "container", Error, "the header's tensor count is larger than the tensor records that follow it",
"What it catches: a header `tensor_count` that promises more tensor records than the index holds: parsing the next record lands in the zero padding after the APR index (an entry with an empty name), or in the padding or tensor data after the GGUF tensor infos.
Why it matters: a reader that trusts the count invents tensors from padding (aprender reports an unsorted index, llama.cpp an empty-named tensor or an overlap) or stops with a confusing error; the real tensors may also be a prefix of what the converter meant to write.
How to fix: re-convert; a hand-edited header must have `tensor_count` equal to the number of records.
Precedent: hand-patched APR headers; converters that counted tensors before dropping some.");

lint!(ST_HEADER_LENGTH, "APRL-F050", "container", Error, "the SafeTensors header length runs past the file",
"What it catches: a SafeTensors file shorter than its 8-byte header length, or whose little-endian header length is larger than the bytes that follow it.
Why it matters: a truncated download is the usual case; a reader that trusts the length reads past the file or allocates gigabytes.
How to fix: download or save the file again and compare its size with the source's.
Precedent: the `safetensors` crate's `HeaderTooSmall` / `InvalidHeaderLength`.");

lint!(ST_HEADER_JSON, "APRL-F051", "container", Error, "the SafeTensors header is not a JSON object of well-formed entries",
"What it catches: a header that is not UTF-8, not JSON, not an object, or followed by anything but whitespace; a tensor entry without exactly `dtype`, `shape` (non-negative integers) and `data_offsets` ([begin, end]); a `__metadata__` that is not a string-to-string map.
Why it matters: loaders differ on what they tolerate (extra fields, numbers as strings); a header only one of them accepts is a file that loads in one tool and not another.
How to fix: re-save the checkpoint with `safetensors.torch.save_file` or `save_pretrained`.
Precedent: the `safetensors` crate's `InvalidHeader`, `InvalidHeaderDeserialization`.");

lint!(ST_DUPLICATE_KEY, "APRL-F052", "container", Error, "a SafeTensors header or index key occurs twice",
"What it catches: the same tensor name twice in a SafeTensors header, the same key twice in `__metadata__`, or the same tensor twice in a `model.safetensors.index.json` weight map.
Why it matters: JSON readers silently keep one of the two (serde_json and Python keep the last), so two tools can load different weights from the same file.
How to fix: re-save the checkpoint with each tensor once.
Precedent: ggml's \"duplicate key\" refusal for GGUF; JSON parser differentials.");

lint!(ST_DTYPE, "APRL-F053", "container", Error, "a SafeTensors dtype is unknown or not byte-addressable",
"What it catches: a `dtype` string the SafeTensors format does not define, or a sub-byte type (`F4`, `F6_E2M3`, `F6_E3M2`) whose byte length is not a whole product of the shape.
Why it matters: the tensor's bytes cannot be interpreted or sized.
How to fix: re-save with a standard dtype (F32, F16, BF16, ...).
Precedent: the `safetensors` crate's `Dtype` enum.");

lint!(ST_SIZE, "APRL-F054", "container", Error, "a SafeTensors tensor's byte length is not its shape times its dtype size",
"What it catches: `data_offsets` spanning a different number of bytes than product(shape) x dtype size (computed without overflow).
Why it matters: the shape or dtype was written wrong; a loader that trusts the shape reads past the tensor.
How to fix: re-save the checkpoint.
Precedent: the `safetensors` crate's `TensorInvalidInfo`; mlx#3364 (reads past the data when this was not checked).");

lint!(ST_OUT_OF_RANGE, "APRL-F055", "container", Error, "SafeTensors data offsets are reversed or past the data area",
"What it catches: `data_offsets` [begin, end] with begin > end, or end beyond the data area after the header.
Why it matters: a truncated file, or a header pointing outside the file.
How to fix: download or save the file again.
Precedent: the `safetensors` crate's `InvalidOffset`.");

lint!(
    ST_OVERLAP,
    "APRL-F056",
    "container",
    Error,
    "two SafeTensors tensors share bytes",
    "What it catches: sorted by offset, a tensor that starts before the previous one ends.
Why it matters: two weights read the same bytes; one of them is not what was saved.
How to fix: re-save the checkpoint.
Precedent: the `safetensors` crate's `InvalidOffset`."
);

lint!(ST_LAYOUT, "APRL-F057", "container", Error, "the SafeTensors data area has a gap or trailing bytes",
"What it catches: bytes of the data area that belong to no tensor: a gap before or between tensors, or trailing bytes after the last one. The message says which.
Why it matters: the format requires the tensors to cover the data area exactly; the `safetensors` crate refuses such a file, so other loaders will too, and hidden bytes are a place to smuggle data.
How to fix: re-save the checkpoint.
Precedent: the `safetensors` crate's `MetadataIncompleteBuffer`.");

lint!(HF_INDEX, "APRL-F058", "container", Error, "the Hugging Face checkpoint or its shard index cannot be resolved",
"What it catches: a directory with neither `model.safetensors` nor `model.safetensors.index.json`; an index that is not JSON, lacks a `weight_map` object, or maps a tensor to something other than a string; a shard name that is not a plain file name in the same directory (a path, `..`, an absolute path); a shard file that is missing.
Why it matters: the checkpoint cannot be assembled, or would read files outside its directory.
How to fix: download the whole checkpoint (every `model-0000x-of-0000n.safetensors` file) into one directory.
Precedent: transformers' sharded-checkpoint loader; path traversal through index files.");

lint!(HF_SHARD_MISMATCH, "APRL-F059", "container", Error, "the shard index disagrees with the shards",
"What it catches: a tensor the index assigns to a shard that does not hold it, a tensor held by two shards, and (as a warning) a tensor in a shard that the index does not list.
Why it matters: loaders that follow the index and loaders that scan the shards assemble different models.
How to fix: regenerate the index (re-save with `save_pretrained`) or download the shards again.
Precedent: transformers' \"missing keys\" / \"unexpected keys\" on a mismatched index.");

/// Every container lint, in code order.
pub static ALL: &[&Lint] = &[
    &IO,
    &UNKNOWN_FORMAT,
    &EMPTY,
    &LFS_POINTER,
    &VERSION,
    &BIG_ENDIAN,
    &TRUNCATED,
    &DUPLICATE_KEY,
    &DUPLICATE_TENSOR,
    &NAME_TOO_LONG,
    &TOO_MANY_DIMS,
    &BAD_DIMS,
    &UNKNOWN_DTYPE,
    &BLOCK_MISALIGNED,
    &BAD_ALIGNMENT,
    &OFFSET_MISALIGNED,
    &OUT_OF_BOUNDS,
    &OVERLAP,
    &NON_CONTIGUOUS,
    &TRAILING_BYTES,
    &BAD_UTF8,
    &BAD_VALUE_TYPE,
    &HEADER_CRC,
    &APR_V1,
    &APR_LEGACY_MAGIC,
    &APR_JSON_INDEX,
    &APR_METADATA_JSON,
    &APR_INDEX_ORDER,
    &FOOTER_CRC,
    &APR_UNSUPPORTED_FLAGS,
    &SIZE_MISMATCH,
    &APR_HEADER_FIELD,
    &APR_INDEX_TRAILING,
    &APR_PADDING,
    &APR_FLAGS_NOTE,
    &COUNT_OVERRUNS,
    &ST_HEADER_LENGTH,
    &ST_HEADER_JSON,
    &ST_DUPLICATE_KEY,
    &ST_DTYPE,
    &ST_SIZE,
    &ST_OUT_OF_RANGE,
    &ST_OVERLAP,
    &ST_LAYOUT,
    &HF_INDEX,
    &HF_SHARD_MISMATCH,
];
