"""SmolLM2's tokenizer in Hugging Face format, from the GGUF of the real node's model.

    python make_tokenizer.py GGUF OUT

GuideLLM builds its synthetic prompts with a Hugging Face tokenizer (AutoTokenizer), which it
would otherwise download from the Hub. transformers can read a GGUF's tokenizer only with torch,
so this builds it with `tokenizers` from the GGUF's own fields (read by `gguf`): a byte-level BPE
(tokenizer.ggml.model "gpt2") with its vocabulary and merges, and the pre-tokenizer llama.cpp
calls "smollm" (digits one by one, then GPT-2's byte-level split), as in SmolLM2's tokenizer.json.
Run at image build time (images/benchmark/Dockerfile); standard library, gguf and tokenizers only.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gguf import GGUFReader
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def field(reader: GGUFReader, name: str) -> object:
    return reader.fields[name].contents()


def main(gguf: Path, out: Path) -> None:
    reader = GGUFReader(gguf)
    if field(reader, "tokenizer.ggml.model") != "gpt2" or field(reader, "tokenizer.ggml.pre") != "smollm":
        raise SystemExit(f"{gguf}: not a SmolLM2 (gpt2/smollm) tokenizer")
    tokens = list(field(reader, "tokenizer.ggml.tokens"))
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False)
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    special = [
        t for t, kind in zip(tokens, field(reader, "tokenizer.ggml.token_type"), strict=True) if kind == 3
    ]
    tokenizer.add_special_tokens(special)
    ids = {name: tokens[int(field(reader, f"tokenizer.ggml.{name}_token_id"))] for name in ("bos", "eos")}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=ids["bos"],
        eos_token=ids["eos"],
        unk_token=tokens[int(field(reader, "tokenizer.ggml.unknown_token_id"))],
        pad_token=ids["eos"],
        chat_template=str(field(reader, "tokenizer.chat_template")),
    )
    fast.save_pretrained(out)
    print(f"wrote {out}: {len(tokens)} tokens, {len(merges)} merges")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
