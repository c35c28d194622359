# The transformers half of the heterogeneous cross-check (see hetero.ts beside it):
# loads each repo hetero.ts wrote with AutoModelForCausalLM(trust_remote_code=True) and
# compares the mixture logits on real tokens (within 1e-4), the routing weights
# (within 1e-6) and the greedy generations (exactly) with the engine's. Exit 1 on a
# mismatch.
#   python3 benchmarks/eval/transformers-check/hetero_check.py <dir>
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM

root = sys.argv[1] if len(sys.argv) > 1 else "transformers-check"
expected = json.load(open(os.path.join(root, "expected.json")))
ids = torch.tensor(expected["batch"])
mask = torch.tensor(expected["mask"])
print(f"transformers {transformers.__version__}, torch {torch.__version__}")
failed = False
for name, want in expected.items():
    if name in ("batch", "mask"):
        continue
    folder = want["folder"] if os.path.isabs(want["folder"]) or os.path.exists(want["folder"]) else os.path.join(root, want["folder"])
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
        routing = model.route(ids, mask)
    logits = torch.tensor(want["logits"]).reshape(out.logits.shape)
    d_logits = (out.logits.float() - logits)[mask.bool()].abs().max().item()
    d_routing = (routing - torch.tensor(want["routing"], dtype=torch.float64)).abs().max().item()
    generated = model.generate(input_ids=ids[:1], attention_mask=mask[:1], max_new_tokens=len(want["generated"]), do_sample=False)[0, ids.shape[1]:].tolist()
    ok = d_logits < 1e-4 and d_routing < 1e-6 and generated == want["generated"]
    failed |= not ok
    print(f"{name:24s} max|Δlogits| {d_logits:.2e}  max|Δrouting| {d_routing:.2e}  generate {generated} vs engine {want['generated']}  {'ok' if ok else 'MISMATCH'}")
sys.exit(1 if failed else 0)
