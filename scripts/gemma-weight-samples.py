#!/usr/bin/env python3
# Samples of the Gemma 3 270M weights as transformers sees them (tests/fixtures/gemma-3-270m/weight_samples.json).
# Usage: python3 scripts/gemma-weight-samples.py GGUF  (needs: pip install gguf numpy)
import sys
import numpy as np, json
from gguf import GGUFReader
from gguf.quants import dequantize
r=GGUFReader(sys.argv[1])
names={'token_embd.weight':'model.embed_tokens.weight','output_norm.weight':'model.norm.weight'}
parts={'attn_norm':'input_layernorm','attn_q':'self_attn.q_proj','attn_k':'self_attn.k_proj','attn_q_norm':'self_attn.q_norm','attn_k_norm':'self_attn.k_norm','post_attention_norm':'post_attention_layernorm','ffn_norm':'pre_feedforward_layernorm','post_ffw_norm':'post_feedforward_layernorm','ffn_down':'mlp.down_proj','attn_v':'self_attn.v_proj','attn_output':'self_attn.o_proj','ffn_up':'mlp.up_proj','ffn_gate':'mlp.gate_proj'}
want=['token_embd.weight','output_norm.weight']+['blk.%d.%s.weight'%(l,p) for l in (0,17) for p in parts]
rng=np.random.default_rng(7)
out={"how":"gguf-py 0.19.0 gguf.quants.dequantize of gemma-3-270m-q4_k_m.gguf, minus 1 for every tensor whose name contains norm.weight (transformers' Gemma2TensorProcessor); values at flat row-major indices of the HF tensor","tensors":{}}
for t in r.tensors:
    if t.name not in want: continue
    a=dequantize(t.data, t.tensor_type).astype(np.float32)
    shape=[int(x) for x in reversed(t.shape)]  # hf order
    a=a.reshape(-1)
    if 'norm.weight' in t.name: a=(a-np.float32(1)).astype(np.float32)
    n=a.size
    idx=sorted(set([0,1,2,3,n-1]+[int(i) for i in rng.integers(0,n,11)]))
    if t.name.endswith('attn_q.weight') or t.name.endswith('attn_k.weight'):
        cols=shape[1]
        idx=sorted(set(idx+[1*cols, 2*cols+5, 128*cols, 129*cols+7]))
    if t.name.startswith('blk'):
        l,p=t.name.split('.')[1:3]; hf='model.layers.%s.%s.weight'%(l,parts[p])
    else: hf=names[t.name]
    out["tensors"][hf]={"gguf":t.name,"shape":shape,"type":t.tensor_type.name,"indices":idx,"f32_bits":[int(x) for x in a[idx].view(np.uint32)],"values":[float(x) for x in a[idx]]}
json.dump(out,open('tests/fixtures/gemma-3-270m/weight_samples.json','w'),indent=0)
print(len(out["tensors"]))
