"""The short human-readable summary printed after a conversion."""

from __future__ import annotations

from ofa_core.convert.pipeline import ConversionReport


def _switches(config) -> str:
    on = [name for name in ("scale_attn", "scale_fc", "scale_heads", "scale_resids") if getattr(config, name)]
    return ", ".join(on) or "none"


def format_report(report: ConversionReport) -> str:
    config = report.converted.config
    lines = [
        f"converted {report.source} -> {report.out}",
        f"  parameters   {report.parameters:,} ({report.parameters / 1e6:.2f}M, shared embedding counted once)",
        f"  config       {config.language}  d_model {config.d_model}  layers {config.encoder_layers}+"
        f"{config.decoder_layers}  heads {config.encoder_attention_heads}  ffn {config.encoder_ffn_dim}  "
        f"{config.resnet_type}  vocab {config.vocab_size}",
        f"               image {config.patch_image_size}px mean {config.image_mean}  buckets text "
        f"{config.token_bucket_size} image {config.image_bucket_size}  normformer: {_switches(config)}  "
        f"disable_entangle {config.disable_entangle}",
        f"  dtype        float32 (source: {', '.join(report.converted.source_dtypes)})",
        f"  files        {', '.join(report.files)}",
    ]
    if report.tokenizer:
        lines.append(f"  tokenizer    from {report.tokenizer}")
    else:
        how = (
            "--vocab PATH/vocab.txt (OFA's utils/BERT_CN_dict)"
            if config.language == "zh"
            else "--bpe-dir DIR with encoder.json, vocab.bpe, dict.txt (OFA's utils/BPE)"
        )
        lines.append(f"  tokenizer    MISSING: model, config and image processor only; convert again with {how}")
    if report.verify:
        v = report.verify
        lines.append(
            f"  verify       ok: {v.tensors_checked} tensors identical after reload; forward on a fixed "
            f"input gives identical logits {list(v.logits_shape)} (greedy ids {v.greedy_ids})"
        )
    else:
        lines.append("  verify       skipped (--no-verify)")
    lines += [f"  note         {note}" for note in report.notes]
    return "\n".join(lines)
