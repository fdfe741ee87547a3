#!/usr/bin/env python3
# An independent NumPy forward pass of the converted Gemma 3 270M (HF gemma3_text semantics:
# embeddings × √d, sandwich RMSNorms with (1 + w), q/k norms, rotate-half RoPE with θ 1e4 on
# sliding layers and 1e6 on global ones, 1/√query_pre_attn_scalar, gelu-tanh MLP, tied head)
# against transformers' golden logits. It checks the conversion (norms without llama.cpp's +1,
# Q/K not permuted), not Glassbox's forward pass.
# Usage: python3 scripts/gemma-numpy-forward.py MODEL_DIR GOLDEN_SAFETENSORS [p0|p1|p2]
# (needs numpy; measured: last-position logits of p0, p1 and p2 (941 tokens, past the 512 window)
# within 7e-5 of transformers; keeping
# the +1 on the norms gives errors of ~30).
import sys
import numpy as np, json, struct
d=sys.argv[1].rstrip('/')+'/'
def load_st(path):
    f=open(path,'rb'); n=struct.unpack('<Q',f.read(8))[0]; h=json.loads(f.read(n)); base=8+n
    mm=np.memmap(path,dtype=np.uint8,mode='r')
    out={}
    for k,v in h.items():
        if k=='__metadata__': continue
        a,b=v['data_offsets']; dt={'F32':np.float32,'I64':np.int64,'I32':np.int32}[v['dtype']]; out[k]=np.frombuffer(mm[base+a:base+b],dtype=dt).reshape(v['shape'])
    return out
W=load_st(d+'model.safetensors'); G=load_st(sys.argv[2])
cfg=json.load(open(d+'config.json'))
P=sys.argv[3] if len(sys.argv)>3 else 'p0'
ids=[int(i) for i in G[P+'.input_ids']]; print(ids)
f32=np.float32
def rms(x,w,eps=1e-6):
    x=x.astype(f32); v=(x*x).mean(-1,keepdims=True); return (x/np.sqrt(v+f32(eps))).astype(f32)*(f32(1)+w)
def rope(x,theta,pos):
    D=x.shape[-1]; inv=1.0/(theta**(np.arange(0,D,2,dtype=np.float32)/D)); ang=np.outer(pos,inv).astype(f32)
    cos=np.cos(np.concatenate([ang,ang],-1))[:,None,:]; sin=np.sin(np.concatenate([ang,ang],-1))[:,None,:]
    x1,x2=x[...,:D//2],x[...,D//2:]; rot=np.concatenate([-x2,x1],-1); return x*cos+rot*sin
def gelu(x): return 0.5*x*(1+np.tanh(np.sqrt(2/np.pi)*(x+0.044715*x**3)))
def forward(ids, permute=False, shift=True):
    T=len(ids); x=W['model.embed_tokens.weight'][ids]*f32(np.sqrt(640))
    pos=np.arange(T)
    off = f32(0) if shift else f32(-1)  # shift=False: pretend weights still hold the +1 (i.e. add 1 back)
    norms=[]
    for l in range(18):
        p='model.layers.%d.'%l; g=lambda n: W[p+n+'.weight']
        h=rms(x,g('input_layernorm')-off)
        q=(h@g('self_attn.q_proj').T).reshape(T,4,256); k=(h@g('self_attn.k_proj').T).reshape(T,1,256); v=(h@g('self_attn.v_proj').T).reshape(T,1,256)
        q=rms(q,g('self_attn.q_norm')-off); k=rms(k,g('self_attn.k_norm')-off)
        theta=1e6 if cfg['layer_types'][l]=='full_attention' else 1e4
        q=rope(q,theta,pos); k=rope(k,theta,pos)
        s=np.einsum('ihd,jd->hij',q,k[:,0,:])*f32(256**-0.5)
        mask=np.triu(np.ones((T,T),bool),1)
        if cfg['layer_types'][l]=='sliding_attention':
            mask|=np.tril(np.ones((T,T),bool),-cfg['sliding_window'])  # i - j >= window
        s[:,mask]=-np.inf
        s=s-s.max(-1,keepdims=True); pm=np.exp(s); pm/=pm.sum(-1,keepdims=True)
        z=np.einsum('hij,jd->ihd',pm,v[:,0,:]).reshape(T,1024)
        o=z@g('self_attn.o_proj').T
        x=x+rms(o,g('post_attention_layernorm')-off)
        h2=rms(x,g('pre_feedforward_layernorm')-off)
        m=(gelu(h2@g('mlp.gate_proj').T)*(h2@g('mlp.up_proj').T))@g('mlp.down_proj').T
        x=x+rms(m,g('post_feedforward_layernorm')-off)
        norms.append(np.linalg.norm(x,axis=-1))
    x=rms(x,W['model.norm.weight']-off)
    return x[-1]@W['model.embed_tokens.weight'].T, np.array(norms)
lg,norms=forward(ids)
ref=G[P+'.logits_last']
print('max abs diff logits', np.abs(lg-ref).max(), 'top', np.argsort(-lg)[:3], lg[np.argsort(-lg)[:3]], 'ref top', np.argsort(-ref)[:3])
print('resid norms diff', np.abs(norms-G[P+'.resid_post_norms']).max())
lg2,_=forward(ids, shift=False)
print('if +1 were kept: max abs diff', np.abs(lg2-ref).max())
