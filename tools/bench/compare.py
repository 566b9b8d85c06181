#!/usr/bin/env python3
"""wpack and its peers side by side, in one run: driven by tools/bench/compare (which builds
wpack, fetches MiniLM and chooses the Python). Every measurement is a separate process; the
peers of one workload run one after another, in an order that rotates each round, so a slow
minute of this shared machine hurts all of them alike. Reports medians over rounds and the
ratio wpack/peer (below 1: wpack takes less time). A peer whose library is not installed is
listed as absent, never estimated.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.path.join(ROOT, "tools", "bench", "peers.py")
CNN = os.path.join(ROOT, "Tests", "Fixtures", "digits-cnn")
PY = sys.executable


def installed(*modules):
    return all(subprocess.run([PY, "-c", f"import {m}"], capture_output=True).returncode == 0 for m in modules)


def run_json(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        raise RuntimeError(f"{os.path.basename(cmd[0])} {' '.join(cmd[1:3])}: {tail}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# NumPy's BLAS as a peer sees it: which library and core it chose, and its SGEMM speed.
NUMPY_BLAS_PROBE = r"""
import json, time
import numpy as np
out = {}
try:
    from threadpoolctl import threadpool_info
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if blas:
        out.update({k: blas[0].get(k) for k in ("internal_api", "version", "architecture", "num_threads")})
except ImportError:
    out["architecture"] = "unknown (threadpoolctl absent)"
a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
a @ a
best = min((lambda t: (a @ a, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))
out["sgemm_2048_gflops"] = 2 * 2048 ** 3 / best / 1e9
print(json.dumps(out))
"""


def machine(wpack, have):
    """The header's facts: the CPU and wpack's kernels (wpack info), the FMA peak and the
    engine's GEMM throughput against it (wpack bench peak), and NumPy's BLAS with the
    environment's OPENBLAS_CORETYPE and without it."""
    facts = {}
    try:
        facts["info"] = run_json([wpack, "info", "--json"])
        facts["peak"] = run_json([wpack, "bench", "peak", "--json", "--repeats", "5"])
    except RuntimeError as e:
        facts["error"] = str(e)
    if have.get("numpy"):
        plain = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        runs = [("environment", dict(os.environ))]
        if "OPENBLAS_CORETYPE" in os.environ:
            runs.append(("without OPENBLAS_CORETYPE", plain))
        facts["numpy"] = {}
        for label, env in runs:
            try:
                facts["numpy"][label] = run_json([PY, "-c", NUMPY_BLAS_PROBE], env=env)
            except RuntimeError as e:
                facts["numpy"][label] = {"error": str(e)}
    return facts


def machine_lines(facts):
    lines = []
    info, peak = facts.get("info"), facts.get("peak")
    if info:
        lines.append(f"CPU: {info['cpu']}; features: {' '.join(info['features']) or 'none'}; wpack kernel level {info['level']} "
                     f"(detected {info['detected_level']}, WPACK_ISA {info['wpack_isa'] or 'unset'}); "
                     + "; ".join(f"{k['name']}: {k['in_use']}" for k in info["kernels"]) + f"; BLAS (matrix-vector only): {info['blas']}")
    if peak:
        lines.append(f"FMA peak, measured: {peak['fma_peak_gflops_one_core']:.1f} GFLOP/s on one core, {peak['fma_peak_gflops']:.1f} on "
                     f"{peak['workers']} workers; MiniLM 32 x 128's GEMMs in wpack: {peak['gemm_gflops']:.1f} GFLOP/s = "
                     f"{100 * peak['gemm_fraction_of_peak']:.0f}% of it")
    for label, n in facts.get("numpy", {}).items():
        if "error" in n:
            lines.append(f"NumPy ({label}): {n['error']}")
        else:
            lines.append(f"NumPy's BLAS ({label}): {n.get('internal_api', '?')} {n.get('version', '')}, core {n.get('architecture', '?')}, "
                         f"SGEMM 2048: {n['sgemm_2048_gflops']:.1f} GFLOP/s")
    if "OPENBLAS_CORETYPE" in os.environ:
        lines.append(f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} in the environment (wpack's OpenBLAS reads it too)")
    if "error" in facts:
        lines.append(f"machine facts: {facts['error']}")
    return lines


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


class Results:
    """Samples per (workload, peer): one number per round, lower is better, in `unit`."""

    def __init__(self):
        self.rows, self.order, self.absent, self.failed, self.extra = {}, [], {}, {}, {}

    def add(self, workload, peer, value, unit):
        if (workload, peer) not in self.rows:
            self.order.append((workload, peer))
            self.rows[(workload, peer)] = {"unit": unit, "samples": []}
        self.rows[(workload, peer)]["samples"].append(value)

    def median(self, workload, peer):
        row = self.rows.get((workload, peer))
        return median(row["samples"]) if row else None


def sample(results, workload, peer, unit, measure):
    """One measurement; a failure marks the peer failed for this workload with its message."""
    if (workload, peer) in results.failed:
        return None
    try:
        value = measure()
    except (RuntimeError, subprocess.CalledProcessError, json.JSONDecodeError) as e:
        results.failed[(workload, peer)] = str(e)
        print(f"  {peer} failed on {workload}: {e}", file=sys.stderr)
        return None
    if value is not None:
        results.add(workload, peer, value, unit)
    return value


# ------------------------------------------------------------------------------ preparation

def prepare_files(wpack, cache, model_dir, have):
    """The stores and peer files the workloads read, made once under .cache/bench."""
    files = {"minilm.wpk": os.path.join(cache, "minilm.wpk"), "minilm.safetensors": os.path.join(model_dir, "model.safetensors"),
             "digits.wpk": os.path.join(cache, "digits.wpk")}
    if not os.path.exists(files["minilm.wpk"]):
        subprocess.run([wpack, "pack", model_dir, "-o", files["minilm.wpk"]], check=True, capture_output=True)
    if os.path.exists(SMOLLM2):
        files["smollm2.wpk"] = os.path.join(cache, "smollm2.wpk")
        if not os.path.exists(files["smollm2.wpk"]):
            subprocess.run([wpack, "pack", SMOLLM2, "-o", files["smollm2.wpk"]], check=True, capture_output=True)
    if not os.path.exists(files["digits.wpk"]):
        subprocess.run([wpack, "pack", os.path.join(CNN, "digits_cnn.safetensors"), "--layers", os.path.join(CNN, "layers.json"),
                        "-o", files["digits.wpk"]], check=True, capture_output=True)
    # Synthetic stores of 1 MiB and 1 GiB with the same one-tensor header: the same data as
    # .safetensors (written here with NumPy alone) and packed from it.
    import numpy as np
    for mib in (1, 1024):
        st = os.path.join(cache, f"synthetic-{mib}MiB.safetensors")
        if not os.path.exists(st):
            rows = mib * 1024
            header = json.dumps({"x": {"dtype": "F32", "shape": [rows, 256], "data_offsets": [0, rows * 1024]}}).encode()
            header += b" " * (-len(header) % 8)
            with open(st + ".tmp", "wb") as f:
                f.write(len(header).to_bytes(8, "little") + header)
                for i in range(0, rows, 4096):
                    n = min(4096, rows - i)
                    f.write(np.repeat(np.arange(i, i + n, dtype=np.float32)[:, None], 256, axis=1).tobytes())
            os.replace(st + ".tmp", st)
        wp = os.path.join(cache, f"synthetic-{mib}MiB.wpk")
        if not os.path.exists(wp):
            subprocess.run([wpack, "pack", st, "-o", wp], check=True, capture_output=True)
        files[f"synthetic-{mib}MiB.safetensors"], files[f"synthetic-{mib}MiB.wpk"] = st, wp
    if have["torch"]:
        for name in ("minilm", "synthetic-1024MiB"):
            src = files[f"{name}.safetensors"]
            pt = os.path.join(cache, f"{name}.pt")
            if not os.path.exists(pt):
                subprocess.run([PY, "-c", "import sys, torch; from safetensors.torch import load_file; "
                                "torch.save(load_file(sys.argv[1]), sys.argv[2] + '.tmp')", src, pt], check=True)
                os.replace(pt + ".tmp", pt)
            files[f"{name}.pt"] = pt
    mpnet = os.path.join(ROOT, ".cache", "mpnet", "model")
    if os.path.exists(os.path.join(mpnet, "model.safetensors")):
        files["mpnet-dir"], files["mpnet.wpk"] = mpnet, os.path.join(cache, "mpnet.wpk")
        if not os.path.exists(files["mpnet.wpk"]):
            subprocess.run([wpack, "pack", mpnet, "-o", files["mpnet.wpk"]], check=True, capture_output=True)
    files["minilm.onnx"] = os.path.join(cache, "minilm.onnx")
    if have["onnxruntime"] and not os.path.exists(files["minilm.onnx"]):
        subprocess.run([PY, PEERS, "export-onnx", model_dir, files["minilm.onnx"]], check=True, capture_output=True)
    # 8-bit weights on both sides: wpack's q8_0 linear matrices, and ONNX Runtime's own dynamic
    # int8 quantization of the same export (quantize_dynamic, int8 weights).
    files["minilm-q8.wpk"] = os.path.join(cache, "minilm-q8.wpk")
    if not os.path.exists(files["minilm-q8.wpk"]):
        subprocess.run([wpack, "pack", model_dir, "-o", files["minilm-q8.wpk"], "--weights", "q8"], check=True, capture_output=True)
    files["minilm-int8.onnx"] = os.path.join(cache, "minilm-int8.onnx")
    if have["onnxruntime"] and os.path.exists(files["minilm.onnx"]) and not os.path.exists(files["minilm-int8.onnx"]):
        subprocess.run([PY, PEERS, "quantize-onnx", files["minilm.onnx"], files["minilm-int8.onnx"]], check=True, capture_output=True)
    return files


# -------------------------------------------------------------------------------- workloads

OPEN_ROWS = {"minilm": "1 open MiniLM to first tensor (87 MiB)", "synthetic-1MiB": "1 open 1 MiB store to first tensor",
             "synthetic-1024MiB": "1 open 1 GiB store to first tensor"}
COLD = "2 cold process: embed \"hello world\""
LATENCY, THROUGHPUT = "3 MiniLM latency, batch 1 x 16", "4 MiniLM batch 32 x 128"
OPS = {"fused chain, 5 ops + broadcast, [4096, 4096]": "5 fused chain 5 ops + broadcast, 16M floats",
       "softmax [4096, 384] last axis": "5 softmax [4096, 384]",
       "layerNorm [4096, 384] with weight and bias": "5 layerNorm [4096, 384]"}
CNN_ROW = "6 digits CNN, 397 images"
CONTRACTIONS = {"conv2d 3x3 pad 1 [8,64,56,56] -> 64": "6 conv2d 3x3 [8, 64, 56, 56] -> 64",
                "einsum bhtd,bhkd->bhtk [32,12,128,32]": "6 einsum bhtd,bhkd->bhtk [32, 12, 128, 32]",
                "einsum nchw,oihw->no [32,64,8,8] [128,64,8,8]": "6 einsum nchw,oihw->no [32, 64, 8, 8]"}


TOKENIZE = {"minilm": "7 tokenize 2,100 varied texts, one thread: MiniLM WordPiece",
            "byte-level-bpe": "7 tokenize 2,100 varied texts, one thread: byte-level BPE",
            "unigram-precompiled": "7 tokenize 2,100 varied texts, one thread: Unigram + precompiled",
            "english-minilm": "7 tokenize 1,000 English texts, one thread: MiniLM WordPiece"}
CORPUS = {"minilm": "8 embed 1,000 mixed texts (5-256 tokens), MiniLM (wpack: whole process; s-t: warm encode, batch 32)",
          "mpnet": "8 embed 1,000 mixed texts (5-256 tokens), MPNet (wpack: whole process; s-t: warm encode, batch 32)"}


def mixed_corpus(cache, model_dir):
    """1,000 English-like texts of 5 to 256 tokens (whole words of MiniLM's vocabulary, one
    token each mostly), in a fixed pseudo-random order; and the tokenizer fixtures' 2,100
    varied texts, one a line."""
    import random
    path = os.path.join(cache, "corpus-mixed-1000.txt")
    if not os.path.exists(path):
        with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
            words = [w.strip() for w in f if w.strip().isalpha() and w.strip().islower() and len(w.strip()) > 2][1500:9000]
        rng = random.Random(42)
        texts = []
        for _ in range(1000):
            t = " ".join(rng.choice(words) for _ in range(rng.randint(3, 250)))
            texts.append(t[0].upper() + t[1:] + ".")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        os.replace(path + ".tmp", path)
    varied = os.path.join(cache, "corpus-varied-2100.txt")
    if not os.path.exists(varied):
        with open(os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "minilm", "ids.json"), encoding="utf-8") as f:
            rows = json.load(f)["rows"]
        with open(varied + ".tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(r["text"].replace("\r", " ").replace("\n", " ") for r in rows) + "\n")
        os.replace(varied + ".tmp", varied)
    return path, varied


def round_tokenize(r, res, wpack, files, model_dir, have, quick):
    mixed, varied = mixed_corpus(os.environ["WPACK_BENCH_CACHE"], model_dir)
    cases = [(TOKENIZE[n], os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", n, "tokenizer.json"), varied)
             for n in ("minilm", "byte-level-bpe", "unigram-precompiled")]
    cases.append((TOKENIZE["english-minilm"], os.path.join(model_dir, "tokenizer.json"), mixed))
    reps = "3" if quick else "7"
    env = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    for row, tok, texts in cases:
        peers = [("wpack", [wpack, "bench", "tokenize", tok, "--file", texts, "--repeats", reps, "--json"])]
        if have["tokenizers"]:
            peers.append(("tokenizers", [PY, PEERS, "tokenize", tok, texts, reps]))
        for name, cmd in rotate(peers, r):
            sample(res, row, name, "ms", lambda cmd=cmd: run_json(cmd, env=env)["median_ms"])


def round_corpus(r, res, wpack, files, model_dir, have, quick):
    mixed, _ = mixed_corpus(os.environ["WPACK_BENCH_CACHE"], model_dir)
    models = [("minilm", model_dir, files["minilm.wpk"])]
    if files.get("mpnet.wpk"):
        models.append(("mpnet", files["mpnet-dir"], files["mpnet.wpk"]))
    for name, folder, wpk in models:
        # wpack: the whole process, as a user runs it; sentence-transformers: a warm encode in
        # a process that has already loaded the model (its start-up is not counted).
        peers = [("wpack", lambda wpk=wpk: timed_process([wpack, "embed", wpk, "--file", mixed], 1))]
        if have["torch"] and have["sentence_transformers"]:
            peers.append(("sentence-transformers",
                          lambda folder=folder: run_json([PY, PEERS, "corpus", folder, mixed, "32", "1"])["median_ms"]))
        for peer, measure in rotate(peers, r):
            sample(res, CORPUS[name], peer, "ms", measure)


def rotate(items, k):
    k %= max(len(items), 1)
    return items[k:] + items[:k]


def round_open(r, res, wpack, files, have, quick):
    names = ["minilm", "synthetic-1MiB", "synthetic-1024MiB"]
    out = run_json([wpack, "bench", "open", *[files[f"{n}.wpk"] for n in names], "--repeats", "200", "--json"])
    for n, row in zip(names, out):
        res.add(OPEN_ROWS[n], "wpack", row["median_us"], "µs")
    kinds = [k for k, ok in [("safetensors-numpy", have["safetensors"]), ("safetensors-lazy", have["safetensors"]),
                             ("safetensors-torch", have["safetensors"] and have["torch"]), ("torch-load", have["torch"])] if ok]
    for kind in rotate(kinds, r):
        for n in ("minilm", "synthetic-1024MiB"):
            path = files.get(f"{n}.pt" if kind == "torch-load" else f"{n}.safetensors")
            reps = "3" if "1024" in n and kind != "safetensors-lazy" else ("5" if quick else "20")
            sample(res, OPEN_ROWS[n], kind, "µs", lambda: run_json([PY, PEERS, "open", kind, path, reps])["median_us"])


def timed_process(cmd, runs):
    ts = []
    for _ in range(runs):
        s = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True)
        ts.append((time.perf_counter() - s) * 1000)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {p.returncode}"])
    return median(ts)


def round_cold(r, res, wpack, files, model_dir, have, quick):
    peers = [("wpack", [wpack, "embed", files["minilm.wpk"], "hello world"], 7)]
    if have["torch"] and have["sentence_transformers"]:
        peers.append(("sentence-transformers", [PY, "-c", "import sys; from sentence_transformers import SentenceTransformer as S; "
                                                "print(S(sys.argv[1], device='cpu').encode(['hello world'])[0][:4])", model_dir], 1))
    if have["onnxruntime"] and have["tokenizers"]:
        peers.append(("onnxruntime", [PY, PEERS, "cold-onnxruntime", model_dir, files["minilm.onnx"], "hello world"], 3))
    for name, cmd, runs in rotate(peers, r):
        sample(res, COLD, name, "ms", lambda: timed_process(cmd, 3 if quick and runs > 3 else runs))


def round_minilm(r, res, wpack, files, model_dir, have, quick):
    peers = ["wpack", "wpack q8"] + [p for p, ok in [("numpy", have["scipy"]), ("torch", have["torch"] and have["sentence_transformers"]),
                                                     ("onnxruntime", have["onnxruntime"]),
                                                     ("onnxruntime int8", have["onnxruntime"] and os.path.exists(files["minilm-int8.onnx"]))] if ok]
    for row, (b, t, reps) in ((LATENCY, (1, 16, 30)), (THROUGHPUT, (32, 128, 2 if quick else 3))):
        for peer in rotate(peers, r):
            if peer.startswith("wpack"):
                store = files["minilm-q8.wpk" if peer == "wpack q8" else "minilm.wpk"]
                cmd = [wpack, "bench", "minilm", store, "--batch", str(b), "--tokens", str(t), "--repeats", str(reps), "--json"]
            else:
                cmd = [PY, PEERS, "minilm", peer, model_dir, files["minilm.wpk"], str(b), str(t), str(reps)]
            def measure(cmd=cmd, row=row, peer=peer):
                out = run_json(cmd)  # the memory figures ride along with the time
                res.extra.setdefault(("peak_rss", row, peer), []).append(out["peak_rss_bytes"])
                if "peak_bytes" in out:
                    res.extra[("activations", row, peer)] = [out["peak_bytes"]]
                return out["median_ms"]
            sample(res, row, peer, "ms", measure)


SMOLLM2 = os.path.join(ROOT, ".cache", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
GENERATE_PROMPT = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 10)  # 140 tokens
PREFILL, DECODE = "9 SmolLM2 Q4_1 prefill, 140 tokens", "9 SmolLM2 Q4_1 decode, 64 tokens"


def generate_commands(wpack, files, have, tokens, repeats, hold=False):
    peers = [("wpack", [wpack, "bench", "generate", files["smollm2.wpk"], "--prompt", GENERATE_PROMPT, "--tokens", str(tokens),
                        "--repeats", str(repeats), "--json"] + (["--hold"] if hold else []))]
    if have["llama_cpp"]:
        peers.append(("llama.cpp", [PY, PEERS, "generate-llama-cpp", SMOLLM2, GENERATE_PROMPT, str(tokens), str(repeats)]
                      + (["--hold"] if hold else [])))
    return peers


def round_generate(r, res, wpack, files, have, quick):
    """Milliseconds per token (lower is better), from each peer's tokens per second."""
    if "smollm2.wpk" not in files:
        return
    for peer, cmd in rotate(generate_commands(wpack, files, have, 64, 2 if quick else 3), r):
        out = {}
        def run(cmd=cmd, peer=peer):
            out.update(run_json(cmd))
            res.extra.setdefault(("peak_rss", DECODE, peer), []).append(out["peak_rss_bytes"])
            return 1000 / out["prefill_tokens_per_second"]
        if sample(res, PREFILL, peer, "ms/token", run) is not None:
            res.add(DECODE, peer, 1000 / out["decode_tokens_per_second"], "ms/token")


def round_ops(r, res, wpack, have, quick):
    reps = "5" if quick else "10"
    peers = ["wpack"] + [p for p, ok in [("numpy", True), ("numexpr", have["numexpr"]), ("torch", have["torch"])] if ok]
    for peer in rotate(peers, r):
        try:
            rows = run_json([wpack, "bench", "ops", "--repeats", reps, "--json"])["wpack"] if peer == "wpack" \
                else run_json([PY, PEERS, "ops", peer, reps])
        except RuntimeError as e:
            res.failed[("5 ops", peer)] = str(e)
            continue
        for row in rows:
            res.add(OPS[row["name"]], peer, row["median_ms"], "ms")


def round_cnn(r, res, wpack, files, have, quick):
    peers = ["wpack"] + [p for p, ok in [("numpy", have["safetensors"]), ("torch", have["torch"] and have["safetensors"]),
                                         ("onnxruntime", have["onnxruntime"] and have["torch"] and have["onnx"])] if ok]
    for peer in rotate(peers, r):
        if peer == "wpack":
            cmd = [wpack, "bench", "run", files["digits.wpk"], "--input", os.path.join(CNN, "test_images.npy"), "--repeats", "30", "--json"]
        else:
            cmd = [PY, PEERS, "cnn", peer, CNN, "30"]
        sample(res, CNN_ROW, peer, "ms", lambda: run_json(cmd)["median_ms"])


def round_contractions(r, res, wpack, have, quick):
    for peer in rotate(["wpack", "numpy"] + (["torch"] if have["torch"] else []), r):
        try:
            rows = run_json([wpack, "bench", "contractions", "--repeats", "5", "--json"])["wpack"] if peer == "wpack" \
                else run_json([PY, PEERS, "contractions", peer, "5"])
        except RuntimeError as e:
            res.failed[("6 contractions", peer)] = str(e)
            continue
        for row in rows:
            if row["name"] in CONTRACTIONS:
                res.add(CONTRACTIONS[row["name"]], peer, row.get("wpack_ms", row.get("median_ms")), "ms")


def smaps(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def shared_memory(wpack, files, model_dir, have):
    """Two processes holding the same model: their resident and proportional (shared pages
    split between the sharers) set sizes, read from /proc while both are alive."""
    peers = [("wpack", [wpack, "bench", "minilm", files["minilm.wpk"], "--batch", "1", "--tokens", "16", "--repeats", "3",
                        "--json", "--hold"])]
    if have["torch"] and have["sentence_transformers"]:
        peers.append(("torch", [PY, PEERS, "minilm", "torch", model_dir, files["minilm.wpk"], "1", "16", "3", "--hold"]))
    if have["onnxruntime"]:
        peers.append(("onnxruntime", [PY, PEERS, "minilm", "onnxruntime", model_dir, files["minilm.wpk"], "1", "16", "3", "--hold"]))
    if "smollm2.wpk" in files:
        peers += [(f"{name} (SmolLM2 generate)", cmd) for name, cmd in generate_commands(wpack, files, have, 8, 1, hold=True)]
    table = {}
    for name, cmd in peers:
        procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for _ in range(2)]
        try:
            for p in procs:
                p.stdout.readline()  # the report line: the model is loaded and has run
            maps = [smaps(p.pid) for p in procs]
            table[name] = {"rss_bytes": sum(m.get("Rss", 0) for m in maps), "pss_bytes": sum(m.get("Pss", 0) for m in maps),
                           "shared_bytes": sum(m.get("Shared_Clean", 0) + m.get("Shared_Dirty", 0) for m in maps)}
        except (OSError, ValueError) as e:
            print(f"  shared memory of {name}: {e}", file=sys.stderr)
        finally:
            for p in procs:
                p.stdin.close()
                p.wait()
    return table


# ---------------------------------------------------------------------------------- report

def fmt(value, unit):
    if value is None:
        return "—"
    if unit == "µs" and value >= 1000:
        return f"{value / 1000:.1f} ms"
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def report(res, memory, shared, goals, meta):
    lines = [f"# wpack vs peers, {meta['date']}", "",
             f"{meta['machine']}; {meta['rounds']} rounds, each peer in its own process, order rotating per round; "
             "medians of the round medians. Ratio = wpack time / peer time: below 1, wpack is faster.", ""]
    lines += [f"- {line}" for line in machine_lines(meta.get("facts", {}))]
    lines += ["",
             "| workload | peer | median | wpack / peer |", "|---|---|---|---|"]
    workloads = []
    for w, _ in res.order:
        if w not in workloads:
            workloads.append(w)
    for w in sorted(workloads):
        base = res.median(w, "wpack")
        for (w2, peer) in res.order:
            if w2 != w:
                continue
            m, unit = res.median(w, peer), res.rows[(w, peer)]["unit"]
            ratio = f"{base / m:.2f}" if base and peer != "wpack" else ""
            lines.append(f"| {w} | {peer} | {fmt(m, unit)} | {ratio} |")
    for (w, peer), msg in sorted(res.failed.items()):
        lines.append(f"| {w} | {peer} | failed: {msg[:80]} | |")
    for peer, why in sorted(meta["absent"].items()):
        lines.append(f"| (all) | {peer} | absent: {why} | |")
    lines += ["", "## Memory", "", "| workload | peer | peak RSS | wpack planned activations |", "|---|---|---|---|"]
    for (w, peer), m in sorted(memory.items()):
        act = m.get("activations")
        lines.append(f"| {w} | {peer} | {m['peak_rss'] / 2**20:.0f} MiB | {'' if act is None else f'{act / 2**20:.1f} MiB'} |")
    if shared:
        lines += ["", "Two processes holding MiniLM at once (batch 1 x 16), from /proc/PID/smaps_rollup:", "",
                  "| peer | RSS, sum | PSS, sum (shared pages counted once) | shared pages |", "|---|---|---|---|"]
        for peer, m in shared.items():
            lines.append(f"| {peer} | {m['rss_bytes'] / 2**20:.0f} MiB | {m['pss_bytes'] / 2**20:.0f} MiB | {m['shared_bytes'] / 2**20:.0f} MiB |")
    lines += ["", "## Goals (issues 6 and 10)", "", "| goal | measured | met |", "|---|---|---|"]
    for g in goals:
        lines.append(f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else ('no' if g['met'] is False else 'not measured')} |")
    return "\n".join(lines) + "\n"


def evaluate_goals(res, memory, shared):
    goals = []

    def add(goal, measured, met):
        goals.append({"goal": goal, "measured": measured, "met": met})

    for n in ("minilm", "synthetic-1024MiB"):
        w, st = res.median(OPEN_ROWS[n], "wpack"), res.median(OPEN_ROWS[n], "safetensors-numpy")
        add(f"open {n}: ≥ 100x faster than safetensors' numpy load", f"{st / w:.0f}x" if w and st else "—",
            (st / w >= 100) if w and st else None)
    small, big = res.median(OPEN_ROWS["synthetic-1MiB"], "wpack"), res.median(OPEN_ROWS["synthetic-1024MiB"], "wpack")
    add("open: constant in the store's size (1 GiB / 1 MiB)", f"{big / small:.2f}x" if small and big else "—",
        (big / small < 1.5) if small and big else None)
    c = res.median(COLD, "wpack")
    add("cold `wpack embed` of one sentence < 60 ms", f"{c:.0f} ms" if c else "—", (c < 60) if c else None)
    w, t = res.median(THROUGHPUT, "wpack"), res.median(THROUGHPUT, "torch")
    add("MiniLM 32 x 128: ≥ 1.1x PyTorch's sentences/s", f"{32000 / w:.1f} vs {32000 / t:.1f} sent/s = {t / w:.2f}x" if w and t else "—",
        (t / w >= 1.1) if w and t else None)
    w, o = res.median(LATENCY, "wpack"), res.median(LATENCY, "onnxruntime")
    add("MiniLM 1 x 16: ≤ 0.7x ONNX Runtime's latency", f"{w:.2f} vs {o:.2f} ms = {w / o:.2f}x" if w and o else "—",
        (w / o <= 0.7) if w and o else None)
    chain = OPS["fused chain, 5 ops + broadcast, [4096, 4096]"]
    w, n, ne = res.median(chain, "wpack"), res.median(chain, "numpy"), res.median(chain, "numexpr")
    add("fused chain: ≥ 3x NumPy", f"{n / w:.1f}x" if w and n else "—", (n / w >= 3) if w and n else None)
    add("fused chain: at least numexpr", f"{ne / w:.2f}x" if w and ne else "—", (ne / w >= 1) if w and ne else None)
    for row in TOKENIZE.values():
        w, t = res.median(row, "wpack"), res.median(row, "tokenizers")
        add(f"{row[2:]}: at least half the throughput of tokenizers", f"{t / w:.2f}x its throughput" if w and t else "—",
            (t / w >= 0.5) if w and t else None)
    for row in CORPUS.values():
        w, st = res.median(row, "wpack"), res.median(row, "sentence-transformers")
        add(f"{row[2:row.rindex(' (')]}: ≥ 2x sentence-transformers' warm encode", f"{st / w:.2f}x" if w and st else "—",
            (st / w >= 2) if w and st else None)
    for row, what in ((DECODE, "decode"), (PREFILL, "prefill of 128+ tokens")):
        w, l = res.median(row, "wpack"), res.median(row, "llama.cpp")
        add(f"SmolLM2 {what}: ≥ 1.0x llama.cpp's tokens/s", f"{1000 / w:.1f} vs {1000 / l:.1f} tokens/s = {l / w:.2f}x" if w and l else "—",
            (l / w >= 1.0) if w and l else None)
    w, l = memory.get((DECODE, "wpack"), {}).get("peak_rss"), memory.get((DECODE, "llama.cpp"), {}).get("peak_rss")
    add("SmolLM2 generation: peak RSS ≤ llama.cpp's", f"{w / 2**20:.0f} vs {l / 2**20:.0f} MiB" if w and l else "—",
        (w <= l) if w and l else None)
    if "wpack (SmolLM2 generate)" in shared:
        s = shared["wpack (SmolLM2 generate)"]
        add("SmolLM2: two generating processes share the mapped weights (PSS < RSS by about the model's 93 MiB)",
            f"RSS {s['rss_bytes'] / 2**20:.0f} MiB, PSS {s['pss_bytes'] / 2**20:.0f} MiB", s["pss_bytes"] < s["rss_bytes"] - 80 * 2**20)
    if "wpack" in shared:
        s = shared["wpack"]
        add("weights counted once: two processes' PSS < their RSS by about one model",
            f"RSS {s['rss_bytes'] / 2**20:.0f} MiB, PSS {s['pss_bytes'] / 2**20:.0f} MiB", s["pss_bytes"] < s["rss_bytes"] - 60 * 2**20)
    return goals


def chart(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels, values = [], []
    for (w, peer) in sorted(res.order):
        base, m = res.median(w, "wpack"), res.median(w, peer)
        if peer != "wpack" and base and m:
            labels.append(f"{w}  vs {peer}")
            values.append(m / base)
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(labels) + 1.2))
    ax.barh(range(len(labels)), values, color=["#2a7" if v >= 1 else "#c44" for v in values])
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1, color="black", linewidth=0.8)
    ax.set_xlabel("peer time / wpack time (log; right of 1: wpack faster)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wpack", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="open,cold,minilm,ops,cnn,memory,tokenize,corpus,generate",
                    help="comma-separated subset of: open, cold, minilm, ops, cnn, memory, tokenize, corpus, generate")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    a = ap.parse_args()
    only = set(a.only.split(","))
    unknown = only - {"open", "cold", "minilm", "ops", "cnn", "memory", "tokenize", "corpus", "generate"}
    if unknown:
        ap.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    modules = ["numpy", "scipy", "torch", "sentence_transformers", "onnxruntime", "onnx", "numexpr", "safetensors", "tokenizers",
               "matplotlib", "llama_cpp"]
    have = {m: installed(m) for m in modules}
    absent = {m: f"python module {m} not importable by {PY}" for m, ok in have.items() if not ok}
    for m, why in absent.items():
        print(f"absent: {m} ({why})", file=sys.stderr)
    os.environ["WPACK_BENCH_CACHE"] = a.cache
    facts = machine(a.wpack, have)
    for line in machine_lines(facts):
        print(line, file=sys.stderr)
    files = prepare_files(a.wpack, a.cache, a.model_dir, have)
    res = Results()
    for r in range(a.rounds):
        print(f"round {r + 1}/{a.rounds}", file=sys.stderr)
        if "open" in only:
            round_open(r, res, a.wpack, files, have, a.quick)
        if "cold" in only:
            round_cold(r, res, a.wpack, files, a.model_dir, have, a.quick)
        if "minilm" in only:
            round_minilm(r, res, a.wpack, files, a.model_dir, have, a.quick)
        if "ops" in only:
            round_ops(r, res, a.wpack, have, a.quick)
        if "cnn" in only:
            round_cnn(r, res, a.wpack, files, have, a.quick)
            round_contractions(r, res, a.wpack, have, a.quick)
        if "tokenize" in only:
            round_tokenize(r, res, a.wpack, files, a.model_dir, have, a.quick)
        if "corpus" in only:
            round_corpus(r, res, a.wpack, files, a.model_dir, have, a.quick)
        if "generate" in only:
            round_generate(r, res, a.wpack, files, have, a.quick)
    memory = {}
    for (kind, w, peer), values in res.extra.items():
        if kind == "peak_rss" and all(values):
            memory.setdefault((w, peer), {})["peak_rss"] = max(values)
    for (kind, w, peer), values in res.extra.items():
        if kind == "activations" and (w, peer) in memory:
            memory[(w, peer)]["activations"] = values[0]
    shared = shared_memory(a.wpack, files, a.model_dir, have) if "memory" in only else {}
    goals = evaluate_goals(res, memory, shared)
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "rounds": a.rounds, "absent": absent,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
            "facts": facts}
    md = report(res, memory, shared, goals, meta)
    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(a.out, f"compare-{stamp}")
    with open(base + ".md", "w") as f:
        f.write(md)
    with open(base + ".json", "w") as f:
        json.dump({"meta": meta, "rows": [{"workload": w, "peer": p, **res.rows[(w, p)], "median": res.median(w, p)}
                                          for w, p in res.order],
                   "failed": [{"workload": w, "peer": p, "error": e} for (w, p), e in res.failed.items()],
                   "memory": [{"workload": w, "peer": p, **m} for (w, p), m in memory.items()], "shared": shared,
                   "goals": goals}, f, indent=1)
    drew = chart(res, base + ".png")
    print(md)
    print(f"written: {base}.md, {base}.json" + (f", {base}.png" if drew else " (no chart: matplotlib absent)"))


if __name__ == "__main__":
    main()
