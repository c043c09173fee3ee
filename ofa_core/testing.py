"""The test kit for ofa_core and for plugins; it sits above the layers it uses (model, recipes, registry, trainer).

Tiny models with informative random weights, a tokenizer from a generated vocabulary, images and
records, a registry from inline plugins, and a recipe runner; all fast on a CPU.
"""

from __future__ import annotations

import tempfile
import zlib
from pathlib import Path

import numpy as np
import orjson
import torch
from PIL import Image

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.image_processing import OFAImageProcessor
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.model.processing import OFAProcessor
from ofa_core.model.tokenization import OFATokenizer
from ofa_core.recipe import load, resolve_tasks
from ofa_core.registry.discovery import PluginLoader


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int = 0, scale: float = 0.5) -> torch.nn.Module:
    """Fill every parameter and BatchNorm statistic with seeded noise.

    A freshly initialised model predicts nearly the same token everywhere; wide random
    weights make outputs depend on every input, which is what equality tests need.
    """

    def noise_for(name: str, shape: torch.Size, uniform: bool = False) -> torch.Tensor:
        # Seeded by name, so the values do not depend on the order modules are declared in.
        generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        return torch.rand(shape, generator=generator) if uniform else torch.randn(shape, generator=generator)

    for name, parameter in model.named_parameters():
        noise = noise_for(name, parameter.shape)
        is_norm = any(part in name for part in ("layer_norm.", "layernorm", "_ln."))
        if (is_norm and name.endswith("weight")) or name.endswith(("c_attn", "w_resid")):
            parameter.copy_(1.0 + 0.2 * noise)
        elif "bn" in name or "downsample.1" in name:
            parameter.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
        else:
            parameter.copy_(noise * (scale if parameter.dim() > 1 else 0.1))
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean"):
            buffer.copy_(0.1 * noise_for(name, buffer.shape))
        elif name.endswith("running_var"):
            buffer.copy_(0.5 + noise_for(name, buffer.shape, uniform=True))
    return model


def tiny_model(
    seed: int = 0, preset: str = "tiny-test", scale: float = 0.5, **overrides
) -> OFAForConditionalGeneration:
    """A preset (by default `tiny-test`) with seeded random weights, in eval mode."""
    torch.manual_seed(seed)
    model = OFAForConditionalGeneration(OFAConfig.from_preset(preset, **overrides))
    return randomize_(model, seed, scale).eval()


def incremental_and_full_logits(
    model: OFAForConditionalGeneration,
    input_ids: torch.Tensor,
    patch_images: torch.Tensor,
    decoder_input_ids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's logits computed one token at a time through the cache, and in one pass without it.

    Search relies on the two agreeing; a cache that drops or misplaces a position shows up as a gap between them.
    """
    with torch.no_grad():
        full = model(
            input_ids=input_ids, patch_images=patch_images, decoder_input_ids=decoder_input_ids, use_cache=False
        ).logits
        encoder_outputs = model.get_encoder()(input_ids, patch_images=patch_images)
        cache, steps = None, []
        for position in range(decoder_input_ids.shape[1]):
            out = model(
                encoder_outputs=encoder_outputs,
                decoder_input_ids=decoder_input_ids[:, position : position + 1],
                cache=cache,
                use_cache=True,
            )
            cache = out.cache
            steps.append(out.logits)
    return torch.cat(steps, dim=1), full


# ---- helpers for plugin authors -----------------------------------------------------------------

_TINY_CJK = "这段文字描述的是哪个区域图片中有什么一只猫狗红色的车在上下左右大小人"


def tiny_vocabulary() -> list[str]:
    """A BERT-style vocabulary of ASCII characters (plus `##` pieces) and a few Chinese characters.

    Every English word tokenizes (character by character) without an [UNK], so tests are about the
    plugin, not about a missing token.
    """
    ascii_pieces = [chr(c) for c in range(33, 127)]
    words = ["the", "of", "what", "which", "region", "does", "text", "describe", "image"]
    return [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *ascii_pieces,
        *(f"##{c}" for c in ascii_pieces if c.isalnum()),
        *words,
        *dict.fromkeys(_TINY_CJK),
        "，",
        "？",
    ]


def tiny_processor(code_dict_size: int = 16, num_bins: int = 1000, patch_image_size: int = 64):
    """An OFAProcessor with the tiny vocabulary (language 'zh', BERT-style tokenization)."""
    with tempfile.TemporaryDirectory() as directory:
        vocab = Path(directory) / "vocab.txt"
        vocab.write_text("\n".join(tiny_vocabulary()) + "\n", encoding="utf-8")
        tokenizer = OFATokenizer.from_bert_vocab(vocab, code_dict_size=code_dict_size, num_bins=num_bins)
    config = OFAConfig.from_preset("tiny-test", patch_image_size=patch_image_size)
    return OFAProcessor(OFAImageProcessor.from_config(config), tokenizer)


def tiny_checkpoint(directory, seed: int = 0, num_bins: int = 1000):
    """Save a tiny random model and its processor to `directory` (a `model.checkpoint` for recipes)."""
    code_dict_size = 16
    processor = tiny_processor(code_dict_size=code_dict_size, num_bins=num_bins)
    model = tiny_model(seed, vocab_size=len(processor.tokenizer), code_dict_size=code_dict_size, num_bins=num_bins)
    directory = Path(directory)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def fake_image(seed: int = 0, size: tuple[int, int] = (40, 30)):
    """A seeded random RGB PIL image of `size` = (width, height)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def tiny_dataset(directory, count: int = 4) -> list[dict]:
    """Write `count` PNG images into `directory`; return records with `id`, `image` (path), `caption`, `references`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    records = []
    for index in range(count):
        path = directory / f"image{index}.png"
        fake_image(index).save(path)
        caption = ["a red car", "a dog", "a cat", "the image"][index % 4]
        records.append({"id": str(index), "image": str(path), "caption": caption, "references": [caption]})
    return records


def registry_with(*plugins, installed: bool = False):
    """A registry from inline plugins (classes or modules with `@hookimpl` methods), for one test.

    Errors in the plugins raise instead of being recorded, so a test sees them. With `installed`,
    built-in and installed entry-point plugins are loaded first, as the CLI does.
    """
    loaded = PluginLoader(environ={})
    if installed:
        loaded.load_entry_points()
    for index, plugin in enumerate(plugins):
        if loaded.manager.is_registered(plugin):  # already loaded through its installed entry point
            continue
        name = getattr(plugin, "__name__", None) or f"inline{index}"
        if not loaded.add(plugin, name, "inline"):
            raise RuntimeError(f"inline plugin {name} is unusable: {loaded.failures[-1].error}")
    return loaded.registry(strict=True)


def run_recipe(recipe: dict, directory, max_steps: int = 2, plugins=()) -> dict:
    """Train `recipe` (a dict, paths relative to `directory`) for `max_steps` with the real trainer.

    The recipe is written to `directory/recipe.json`; installed plugins load as in the CLI, plus any
    inline `plugins`. Returns what `ofa_core.trainer.from_recipe.train` returns.
    """
    from ofa_core.trainer import from_recipe  # the trainer's imports only for tests that train

    directory = Path(directory)
    path = directory / "recipe.json"
    training = {"output_dir": "run", **recipe.get("training", {}), "max_steps": max_steps}
    path.write_bytes(orjson.dumps({**recipe, "training": training}, option=orjson.OPT_INDENT_2))
    loaded = PluginLoader(environ={})
    loaded.load_entry_points()
    for index, plugin in enumerate(plugins):
        loaded.add(plugin, getattr(plugin, "__name__", None) or f"inline{index}", "inline")
    resolved_recipe = load(path)
    loaded.load_recipe_modules(resolved_recipe.spec.plugins.load, resolved_recipe.base_dir)
    return from_recipe.train(resolved_recipe, resolve_tasks(resolved_recipe, loaded.registry(strict=True)))


def check_metric(spec, predictions: list[str], references: list[list[str]], options=None) -> dict[str, float]:
    """Assert `spec`'s metric merges across processes: two halves summed == all at once. Returns the scores.

    Catches the usual mistake of keeping an average (or a set) in `state()`, which gives wrong
    scores as soon as evaluation runs on more than one process.
    """
    options = spec.options() if options is None else options
    half = len(predictions) // 2
    parts = [spec.build(options), spec.build(options)]
    parts[0].update(predictions[:half], references[:half])
    parts[1].update(predictions[half:], references[half:])
    states = [part.state() for part in parts]
    for key, value in states[0].items():
        if not isinstance(value, (int, float, list)) or isinstance(value, bool):
            raise AssertionError(
                f"state()[{key!r}] is {type(value).__name__}; use numbers (added) or lists (concatenated)"
            )
    merged = spec.build(options)
    merged.load_state({key: states[0][key] + states[1][key] for key in states[0]})
    whole = spec.build(options)
    whole.update(predictions, references)
    if merged.compute() != whole.compute():
        raise AssertionError(
            f"merged halves give {merged.compute()}, all at once gives {whole.compute()}; state() must add up"
        )
    return whole.compute()
