#!/usr/bin/env python3
"""The peers' side of tools/bench/compare: one workload, one peer, one process, one JSON line
on stdout. Each runs in its own process so that its peak resident memory is its own and no
library's thread pool or allocator state leaks into the next measurement.

    peers.py open KIND FILE REPEATS            KIND: safetensors-numpy | safetensors-lazy |
                                                     safetensors-torch | torch-load
    peers.py minilm PEER MODEL_DIR WPK BATCH TOKENS REPEATS [--hold]
                                               PEER: numpy | torch | onnxruntime | "onnxruntime int8"
    peers.py ops PEER REPEATS                  PEER: numpy | numexpr | torch
    peers.py cnn PEER FOLDER REPEATS           PEER: numpy | torch | onnxruntime
    peers.py contractions PEER REPEATS         PEER: numpy | torch
    peers.py tokenize TOKENIZER_JSON TEXTS REPEATS   the tokenizers library, one thread
    peers.py corpus MODEL_DIR TEXTS BATCH REPEATS    sentence-transformers' warm encode
    peers.py cold-onnxruntime MODEL_DIR ONNX TEXT
    peers.py export-onnx MODEL_DIR ONNX        (needs torch and onnx)

Every peer is written the way its own documentation advises; the NumPy ones follow
../shared/SEED.md (float32, einsum with optimize, broadcasting, @). Threads: 2 everywhere, the
machine's cores, as wpack uses.
"""
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = 2


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def median_ms(run, repeats, warmups=1):
    for _ in range(warmups):
        run()
    times = []
    for _ in range(repeats):
        s = time.perf_counter()
        run()
        times.append((time.perf_counter() - s) * 1000)
    times.sort()
    return times[len(times) // 2]


def emit(value):
    print(json.dumps(value), flush=True)


def hold():
    """Keeps this process (and what it mapped) alive until compare closes our stdin."""
    for _ in sys.stdin:
        pass


# ---------------------------------------------------------------------------------------- open

def open_first_tensor(kind, path):
    """From nothing to the first tensor's first float, the way each library loads weights."""
    if kind == "safetensors-numpy":
        from safetensors.numpy import load_file
        d = load_file(path)
        return float(next(iter(d.values())).reshape(-1)[0])
    if kind == "safetensors-lazy":
        from safetensors import safe_open
        with safe_open(path, framework="numpy") as f:
            return float(f.get_tensor(next(iter(f.keys()))).reshape(-1)[0])
    if kind == "safetensors-torch":
        from safetensors.torch import load_file
        d = load_file(path)
        return float(next(iter(d.values())).reshape(-1)[0])
    if kind == "torch-load":
        import torch
        d = torch.load(path, weights_only=True)
        return float(next(iter(d.values())).reshape(-1)[0])
    raise SystemExit(f"unknown open kind {kind}")


def bench_open(kind, path, repeats):
    if kind.startswith("safetensors"):
        import safetensors  # noqa: F401  (import time is not load time)
    if kind.startswith("torch") or kind.endswith("torch"):
        import torch  # noqa: F401
    open_first_tensor(kind, path)  # warm: the page cache holds the file, as for wpack
    times = []
    for _ in range(repeats):
        s = time.perf_counter()
        open_first_tensor(kind, path)
        times.append((time.perf_counter() - s) * 1e6)
    times.sort()
    emit({"median_us": times[len(times) // 2], "min_us": times[0], "repeats": repeats, "peak_rss_bytes": peak_rss()})


# -------------------------------------------------------------------------------------- MiniLM

def synthetic_ids(batch, tokens):
    """The same ids as `wpack bench minilm`: a 64-bit LCG over the ordinary vocabulary."""
    import numpy as np
    state, rows = 12345, []
    for _ in range(batch):
        ids = [101]
        for _ in range(tokens - 2):
            state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
            ids.append(2000 + (state >> 33) % 20000)
        rows.append(ids + [102])
    ids = np.array(rows, dtype=np.int64)
    return ids, np.ones_like(ids)


def minilm_numpy(model_dir, wpk, ids, mask):
    """BERT written the seed's way, reading the same .wpk through tools/wpk.py."""
    import numpy as np
    from math import sqrt
    from scipy.special import erf
    sys.path.insert(0, os.path.join(HERE, ".."))
    import wpk as reader
    f = reader.WpkFile(wpk)
    W = {t["name"]: f.array(t["name"]) for t in f.tensors if t["dtype"] == "float32"}
    cfg = json.loads(f.metadata["file:config.json"])
    H, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    dh = H // nh

    def ln(x, p):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + eps) * W[p + ".weight"] + W[p + ".bias"]

    def lin(x, p):
        return x @ W[p + ".weight"].T + W[p + ".bias"]

    def gelu(x):
        return 0.5 * x * (1 + erf(x / np.float32(sqrt(2)))).astype(np.float32)

    def run():
        B, T = ids.shape
        x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:T] \
            + W["embeddings.token_type_embeddings.weight"][0]
        x = ln(x, "embeddings.LayerNorm")
        add = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            q = lin(x, p + "attention.self.query").reshape(B, T, nh, dh)
            k = lin(x, p + "attention.self.key").reshape(B, T, nh, dh)
            v = lin(x, p + "attention.self.value").reshape(B, T, nh, dh)
            s = np.einsum("bthd,bshd->bhts", q, k, optimize=True) / np.float32(sqrt(dh)) + add
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            c = np.einsum("bhts,bshd->bthd", s, v, optimize=True).reshape(B, T, H)
            x = ln(lin(c, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            x = ln(lin(gelu(lin(x, p + "intermediate.dense")), p + "output.dense") + x, p + "output.LayerNorm")
        e = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return e / np.linalg.norm(e, axis=1, keepdims=True)
    return run


def minilm_torch(model_dir, wpk, ids, mask):
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(THREADS)
    bert = SentenceTransformer(model_dir, device="cpu")[0].auto_model.eval()
    t_ids, t_mask = torch.tensor(ids), torch.tensor(mask)

    def run():
        with torch.inference_mode():
            out = bert(input_ids=t_ids, attention_mask=t_mask).last_hidden_state
            e = (out * t_mask[..., None]).sum(1) / t_mask.sum(1, keepdim=True)
            return torch.nn.functional.normalize(e, dim=1)
    return run


def export_onnx(model_dir, path):
    """MiniLM's transformer as ONNX (dynamic batch and length), pooling left to the caller as
    sentence-transformers does it. Written to a temporary name first: never a half file."""
    import torch
    from sentence_transformers import SentenceTransformer
    bert = SentenceTransformer(model_dir, device="cpu")[0].auto_model.eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    d = torch.ones((1, 8), dtype=torch.int64)
    tmp = path + ".tmp"
    torch.onnx.export(Wrapper(bert), (d, d), tmp, input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                      dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"}}, opset_version=14,
                      dynamo=False)
    os.replace(tmp, path)


def quantize_onnx(source, path):
    """ONNX Runtime's own 8-bit model: dynamic quantization of the float32 export (int8
    weights, activations quantized per call), written to a temporary name first."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    tmp = path + ".tmp.onnx"
    quantize_dynamic(source, tmp, weight_type=QuantType.QInt8)
    os.replace(tmp, path)


def ort_session(path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def minilm_onnxruntime(model_dir, wpk, ids, mask, onnx="minilm.onnx"):
    """The export (or, with onnx="minilm-int8.onnx", its int8 quantization) beside the .wpk."""
    import numpy as np
    session = ort_session(os.path.join(os.path.dirname(wpk), onnx))

    def run():
        out = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        e = (out * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return e / np.linalg.norm(e, axis=1, keepdims=True)
    return run


def bench_minilm(peer, model_dir, wpk, batch, tokens, repeats, keep):
    ids, mask = synthetic_ids(batch, tokens)
    run = {"numpy": minilm_numpy, "torch": minilm_torch, "onnxruntime": minilm_onnxruntime,
           "onnxruntime int8": lambda *a: minilm_onnxruntime(*a, onnx="minilm-int8.onnx")}[peer](model_dir, wpk, ids, mask)
    emit({"median_ms": median_ms(run, repeats), "peak_rss_bytes": peak_rss()})
    if keep:
        hold()


def cold_onnxruntime(model_dir, onnx_path, text):
    """A whole process embedding one text with ONNX Runtime and the tokenizers library."""
    import numpy as np
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    enc = tok.encode(text)
    ids = np.array([enc.ids], dtype=np.int64)
    mask = np.ones_like(ids)
    out = ort_session(onnx_path).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    e = out.mean(1)
    print(" ".join(f"{v:.6f}" for v in (e / np.linalg.norm(e))[0]))


# ----------------------------------------------------------------------------------------- ops

def ops_inputs():
    import numpy as np
    rng = np.random.default_rng(1)
    return (rng.standard_normal((4096, 4096), dtype=np.float32), rng.standard_normal(4096, dtype=np.float32),
            rng.standard_normal((4096, 384), dtype=np.float32), rng.standard_normal(384, dtype=np.float32),
            rng.standard_normal(384, dtype=np.float32))


# The names are wpack bench ops' names: compare matches rows by them.
CHAIN, SOFTMAX, LAYERNORM = ("fused chain, 5 ops + broadcast, [4096, 4096]", "softmax [4096, 384] last axis",
                             "layerNorm [4096, 384] with weight and bias")


def bench_ops(peer, repeats):
    import numpy as np
    x, b, r, w, bb = ops_inputs()
    if peer == "numpy":
        def softmax():
            e = np.exp(r - r.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)

        def layernorm():
            m = r.mean(-1, keepdims=True)
            d = r - m
            v = (d * d).mean(-1, keepdims=True)
            return d / np.sqrt(v + 1e-5) * w + bb
        work = {CHAIN: lambda: np.maximum((x + b) * 2 - 1, 0) * x, SOFTMAX: softmax, LAYERNORM: layernorm}
    elif peer == "numexpr":
        import numexpr as ne
        ne.set_num_threads(THREADS)
        work = {CHAIN: lambda: ne.evaluate("where((x + b) * 2 - 1 > 0, (x + b) * 2 - 1, 0) * x", local_dict={"x": x, "b": b})}
    elif peer == "torch":
        import torch
        torch.set_num_threads(THREADS)
        tx, tb, tr, tw, tbb = (torch.from_numpy(a) for a in (x, b, r, w, bb))
        work = {CHAIN: lambda: torch.relu((tx + tb) * 2 - 1) * tx, SOFTMAX: lambda: torch.softmax(tr, -1),
                LAYERNORM: lambda: torch.nn.functional.layer_norm(tr, (384,), tw, tbb, 1e-5)}
    else:
        raise SystemExit(f"unknown ops peer {peer}")
    emit([{"name": name, "median_ms": median_ms(f, repeats)} for name, f in work.items()])


# ----------------------------------------------------------------------------------------- CNN

def cnn_layers(folder):
    with open(os.path.join(folder, "layers.json")) as f:
        return json.load(f)["layers"]


def cnn_torch_module(folder):
    import torch
    from safetensors.torch import load_file
    weights = load_file(os.path.join(folder, "digits_cnn.safetensors"))
    mods = []
    for layer in cnn_layers(folder):
        op = layer["op"]
        if op == "conv2d":
            w = weights[layer["weight"]]
            m = torch.nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), padding=tuple(layer.get("padding", [0, 0])))
            m.weight.data, m.bias.data = w, weights[layer["bias"]]
        elif op == "linear":
            w = weights[layer["weight"]]
            m = torch.nn.Linear(w.shape[1], w.shape[0])
            m.weight.data, m.bias.data = w, weights[layer["bias"]]
        elif op == "relu":
            m = torch.nn.ReLU()
        elif op == "maxPool2d":
            m = torch.nn.MaxPool2d(tuple(layer["kernel"]))
        elif op == "flatten":
            m = torch.nn.Flatten()
        else:
            raise SystemExit(f"peers.py: layer {op} not mapped to PyTorch")
        mods.append(m)
    return torch.nn.Sequential(*mods).eval()


def cnn_numpy(folder, images):
    """The CNN in NumPy: im2col with sliding_window_view, @ for the GEMMs."""
    import numpy as np
    from safetensors.numpy import load_file
    weights = load_file(os.path.join(folder, "digits_cnn.safetensors"))
    layers = cnn_layers(folder)

    def conv(x, w, b, pad):
        n, c, _, _ = x.shape
        o, _, kh, kw = w.shape
        x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
        oh, ow = win.shape[2], win.shape[3]
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
        return (cols @ w.reshape(o, -1).T + b).reshape(n, oh, ow, o).transpose(0, 3, 1, 2)

    def run():
        x = images
        for layer in layers:
            op = layer["op"]
            if op == "conv2d":
                x = conv(x, weights[layer["weight"]], weights[layer["bias"]], layer.get("padding", [0, 0]))
            elif op == "linear":
                x = x @ weights[layer["weight"]].T + weights[layer["bias"]]
            elif op == "relu":
                x = np.maximum(x, 0)
            elif op == "maxPool2d":
                kh, kw = layer["kernel"]
                n, c, h, w_ = x.shape
                x = x[:, :, :h // kh * kh, :w_ // kw * kw].reshape(n, c, h // kh, kh, w_ // kw, kw).max(axis=(3, 5))
            elif op == "flatten":
                x = x.reshape(x.shape[0], -1)
        return x
    return run


def bench_cnn(peer, folder, repeats):
    import numpy as np
    images = np.load(os.path.join(folder, "test_images.npy"))
    if peer == "numpy":
        run = cnn_numpy(folder, images)
    elif peer == "torch":
        import torch
        torch.set_num_threads(THREADS)
        net, x = cnn_torch_module(folder), torch.from_numpy(images)

        def run():
            with torch.inference_mode():
                return net(x)
    elif peer == "onnxruntime":
        path = os.path.join(os.environ.get("WPACK_BENCH_CACHE", "."), "digits.onnx")
        if not os.path.exists(path):
            import torch
            tmp = path + ".tmp"
            torch.onnx.export(cnn_torch_module(folder), (torch.zeros((1,) + images.shape[1:]),), tmp, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "n"}}, opset_version=14, dynamo=False)
            os.replace(tmp, path)
        session = ort_session(path)

        def run():
            return session.run(None, {"x": images})[0]
    else:
        raise SystemExit(f"unknown cnn peer {peer}")
    emit({"median_ms": median_ms(run, repeats), "peak_rss_bytes": peak_rss()})


# The names are wpack bench contractions' names: compare matches rows by them.
EINSUM_ATTN, EINSUM_NO, CONV = ("einsum bhtd,bhkd->bhtk [32,12,128,32]", "einsum nchw,oihw->no [32,64,8,8] [128,64,8,8]",
                                "conv2d 3x3 pad 1 [8,64,56,56] -> 64")


def bench_contractions(peer, repeats):
    import numpy as np
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s, dtype=np.float32)  # noqa: E731
    q, k = f32(32, 12, 128, 32), f32(32, 12, 128, 32)
    x, w = f32(32, 64, 8, 8), f32(128, 64, 8, 8)
    img, filt = f32(8, 64, 56, 56), f32(64, 64, 3, 3)
    if peer == "numpy":
        def conv():
            xp = np.pad(img, ((0, 0), (0, 0), (1, 1), (1, 1)))
            win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
            cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(8 * 56 * 56, 64 * 9)
            return (cols @ filt.reshape(64, -1).T).reshape(8, 56, 56, 64).transpose(0, 3, 1, 2)
        work = {EINSUM_ATTN: lambda: np.einsum("bhtd,bhkd->bhtk", q, k, optimize=True),
                EINSUM_NO: lambda: np.einsum("nchw,oihw->no", x, w, optimize=True), CONV: conv}
    elif peer == "torch":
        import torch
        torch.set_num_threads(THREADS)
        tq, tk, tx, tw, ti, tf = (torch.from_numpy(a) for a in (q, k, x, w, img, filt))

        def conv():
            with torch.inference_mode():
                return torch.nn.functional.conv2d(ti, tf, padding=1)
        work = {EINSUM_ATTN: lambda: torch.einsum("bhtd,bhkd->bhtk", tq, tk),
                EINSUM_NO: lambda: torch.einsum("nchw,oihw->no", tx, tw), CONV: conv}
    else:
        raise SystemExit(f"unknown contractions peer {peer}")
    emit([{"name": name, "median_ms": median_ms(f, repeats)} for name, f in work.items()])


# ------------------------------------------------------------------------------- encoders

def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def bench_tokenize(tokenizer_json, texts_path, repeats):
    # One thread: encode_batch is the library's fastest path; RAYON_NUM_THREADS=1 (set by
    # compare for this process) keeps it on one core, as wpack's tokenizer runs.
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer_json)
    tok.no_truncation()
    tok.no_padding()
    texts = read_lines(texts_path)
    count = [0]

    def run():
        count[0] = sum(len(e.ids) for e in tok.encode_batch(texts))
    ms = median_ms(run, repeats)
    emit({"median_ms": ms, "tokens": count[0], "texts": len(texts)})


def bench_corpus(model_dir, texts_path, batch, repeats):
    import torch
    torch.set_num_threads(THREADS)
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(model_dir, device="cpu")
    texts = read_lines(texts_path)
    ms = median_ms(lambda: model.encode(texts, batch_size=batch), repeats)
    emit({"median_ms": ms, "texts": len(texts), "peak_rss_bytes": peak_rss()})


# ------------------------------------------------------------------------------------ generate

def bench_generate_llama_cpp(gguf, prompt, tokens, repeats, keep):
    """llama.cpp (llama-cpp-python) on the same GGUF: the prompt in one batch, then greedy
    decode steps that ignore end-of-sequence, as `wpack bench generate` runs them."""
    from llama_cpp import Llama
    model = Llama(model_path=gguf, n_threads=THREADS, n_threads_batch=THREADS, n_ctx=2048, n_batch=512, verbose=False)
    ids = model.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    prefill, decode = [], []
    for rep in range(repeats + 1):
        model.reset()
        s = time.perf_counter()
        model.eval(ids)
        p = time.perf_counter() - s
        s = time.perf_counter()
        for _ in range(tokens - 1):
            logits = model.scores[model.n_tokens - 1]
            model.eval([int(logits.argmax())])
        d = time.perf_counter() - s
        if rep:  # the first run warms the mapping and llama.cpp's buffers
            prefill.append(len(ids) / p)
            decode.append((tokens - 1) / d)
    prefill.sort()
    decode.sort()
    emit({"prompt_tokens": len(ids), "prefill_tokens_per_second": prefill[len(prefill) // 2],
          "decode_tokens_per_second": decode[len(decode) // 2], "peak_rss_bytes": peak_rss()})
    if keep:
        hold()


def main(argv):
    what = argv[0]
    if what == "open":
        bench_open(argv[1], argv[2], int(argv[3]))
    elif what == "minilm":
        bench_minilm(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]), int(argv[6]), "--hold" in argv)
    elif what == "ops":
        bench_ops(argv[1], int(argv[2]))
    elif what == "cnn":
        bench_cnn(argv[1], argv[2], int(argv[3]))
    elif what == "contractions":
        bench_contractions(argv[1], int(argv[2]))
    elif what == "tokenize":
        bench_tokenize(argv[1], argv[2], int(argv[3]))
    elif what == "corpus":
        bench_corpus(argv[1], argv[2], int(argv[3]), int(argv[4]))
    elif what == "generate-llama-cpp":
        bench_generate_llama_cpp(argv[1], argv[2], int(argv[3]), int(argv[4]), "--hold" in argv)
    elif what == "cold-onnxruntime":
        cold_onnxruntime(argv[1], argv[2], argv[3])
    elif what == "export-onnx":
        export_onnx(argv[1], argv[2])
    elif what == "quantize-onnx":
        quantize_onnx(argv[1], argv[2])
    else:
        raise SystemExit(f"peers.py: unknown workload {what}")


if __name__ == "__main__":
    main(sys.argv[1:])
