#!/usr/bin/env python3
"""One peer, one configuration, one process: prints a JSON line with the median forward time
and the process's peak resident memory. Run by tools/bench/minilm; not meant to be called alone.

    minilm_peers.py PEER MODEL_DIR WPK BATCH TOKENS REPEATS
PEER: numpy | torch | onnxruntime
"""
import json, os, resource, sys, time

peer, model_dir, wpk, batch, tokens, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numpy as np

# The same synthetic ids as `wpack bench minilm`: a 64-bit LCG over the ordinary vocabulary.
state = 12345
rows = []
for _ in range(batch):
    ids = [101]
    for _ in range(tokens - 2):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        ids.append(2000 + (state >> 33) % 20000)
    rows.append(ids + [102])
ids = np.array(rows, dtype=np.int64)
mask = np.ones_like(ids)


def numpy_forward():
    """BERT written the seed's way: float32, einsum(optimize=True), broadcasting, @."""
    import wpk as reader
    f = reader.WpkFile(wpk)
    W = {t["name"]: f.array(t["name"]) for t in f.tensors if t["dtype"] == "float32"}
    cfg = json.loads(f.metadata["file:config.json"])
    H, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    dh = H // nh
    from math import erf, sqrt

    def ln(x, p):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + eps) * W[p + ".weight"] + W[p + ".bias"]

    def lin(x, p):
        return x @ W[p + ".weight"].T + W[p + ".bias"]

    def gelu(x):
        from scipy.special import erf as verf
        return 0.5 * x * (1 + verf(x / np.float32(sqrt(2)))).astype(np.float32)

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


def torch_forward():
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(2)
    model = SentenceTransformer(model_dir, device="cpu")
    bert = model[0].auto_model.eval()
    t_ids, t_mask = torch.tensor(ids), torch.tensor(mask)

    def run():
        with torch.inference_mode():
            out = bert(input_ids=t_ids, attention_mask=t_mask).last_hidden_state
            e = (out * t_mask[..., None]).sum(1) / t_mask.sum(1, keepdim=True)
            return torch.nn.functional.normalize(e, dim=1)
    return run


def ort_forward():
    import onnxruntime as ort
    path = os.path.join(os.path.dirname(wpk), "minilm.onnx")
    if not os.path.exists(path):
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
        torch.onnx.export(Wrapper(bert), (d, d), path, input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                          dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"}}, opset_version=14,
                          dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def run():
        out = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        e = (out * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return e / np.linalg.norm(e, axis=1, keepdims=True)
    return run


run = {"numpy": numpy_forward, "torch": torch_forward, "onnxruntime": ort_forward}[peer]()
run()
times = []
for _ in range(repeats):
    s = time.perf_counter(); run(); times.append((time.perf_counter() - s) * 1000)
times.sort()
print(json.dumps({"median_ms": times[len(times) // 2], "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
