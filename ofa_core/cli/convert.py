"""`ofa convert`: fairseq checkpoints and transformers ports to ofa_core directories, and back to fairseq.

Heavy imports (torch, the model) happen inside the handlers so that `--help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "convert official fairseq checkpoints and transformers ports to ofa_core model directories (and back)"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    kinds = parser.add_subparsers(dest="kind", metavar="{fairseq,port,to-fairseq}", required=True)

    fairseq = kinds.add_parser(
        "fairseq",
        parents=parents,
        help="official fairseq .pt checkpoint -> model directory",
        description="Convert an official OFA fairseq checkpoint (OFA-CN base/large, EN tiny..huge and their "
        "fine-tunes) into an ofa_core model directory. The config is read from the checkpoint.",
    )
    fairseq.add_argument("checkpoint", type=Path, metavar="CKPT.pt", help="fairseq checkpoint file")
    fairseq.add_argument(
        "--lang",
        choices=("zh", "en"),
        help="vocabulary of the checkpoint (default: from its bpe setting / vocabulary size)",
    )
    fairseq.add_argument(
        "--ema",
        action="store_true",
        help="take the EMA weights (extra_state['ema']); the official VQA evaluation uses them",
    )
    _add_output_arguments(fairseq)
    fairseq.add_argument(
        "--no-tokenizer",
        action="store_true",
        help="write the model without a tokenizer when no --vocab / --bpe-dir is at hand (it cannot "
        "predict until converted again with one)",
    )
    fairseq.set_defaults(handler=run_fairseq)

    port = kinds.add_parser(
        "port",
        parents=parents,
        help="transformers port (directory or hub id) -> model directory",
        description="Convert a published transformers port of OFA (OFA-Sys/ofa-*, YeungNLP/ofa-cn-*) given as a "
        "local directory or a Hugging Face hub id. Its tokenizer files are converted too.",
    )
    port.add_argument("source", metavar="SRC", help="port directory or hub id, e.g. YeungNLP/ofa-cn-base")
    _add_output_arguments(port)
    port.set_defaults(handler=run_port)

    back = kinds.add_parser(
        "to-fairseq",
        parents=parents,
        help="model directory -> checkpoint in the official fairseq layout",
        description="Write an ofa_core model directory as a fairseq checkpoint the official OFA code loads and "
        "evaluates like a released one: official key names, and the full cfg of the checkpoint it was "
        "converted from or of the official fine-tuning script of its task.",
    )
    back.add_argument("directory", type=Path, metavar="DIR", help="ofa_core model directory")
    back.add_argument("--out", type=Path, required=True, metavar="CKPT.pt", help="checkpoint file to write")
    back.add_argument(
        "--task",
        metavar="NAME",
        help="take the cfg of this official fine-tuning script (caption, caption_cn, vqa_gen, refcoco, "
        "refcoco_cn, snli_ve, image_classify, gigaword, glue_cola ... glue_sst2, ocr) instead of the "
        "model's own (its original fairseq cfg, else its ofa_task.json's task)",
    )
    back.set_defaults(handler=run_to_fairseq)


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="new directory to write (must not exist or be empty)"
    )
    parser.add_argument(
        "--vocab",
        type=Path,
        metavar="PATH",
        help="Chinese models: the BERT vocab.txt (OFA's utils/BERT_CN_dict/vocab.txt)",
    )
    parser.add_argument(
        "--bpe-dir",
        type=Path,
        metavar="DIR",
        help="English models: directory with encoder.json, vocab.bpe, dict.txt (OFA's utils/BPE)",
    )
    parser.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reload the result, compare every tensor and one forward pass (default: on)",
    )


def run(args: argparse.Namespace) -> int:
    from transformers.utils import logging

    logging.disable_progress_bar()  # the report says what was written; per-shard bars are noise here
    return args.handler(args)


def run_fairseq(args: argparse.Namespace) -> int:
    from ofa_core.convert.fairseq import read_fairseq
    from ofa_core.convert.pipeline import convert_to_directory
    from ofa_core.convert.report import format_report
    from ofa_core.convert.writer import OutputError, build_tokenizer, check_output_dir, missing_vocabulary

    check_output_dir(args.out)
    converted = read_fairseq(args.checkpoint, ema=args.ema, language=args.lang)
    if args.no_tokenizer and (args.vocab or args.bpe_dir):
        raise OutputError("--no-tokenizer excludes --vocab and --bpe-dir; drop one of them")
    if not (args.no_tokenizer or args.vocab or args.bpe_dir):
        raise OutputError(missing_vocabulary(args.checkpoint, converted.config))
    tokenizer = build_tokenizer(converted.config.language, converted.config, args.vocab, args.bpe_dir)
    report = convert_to_directory(
        converted,
        str(args.checkpoint),
        args.out,
        tokenizer=tokenizer,
        tokenizer_source=str(args.vocab or args.bpe_dir) if tokenizer else None,
        verify=args.verify,
    )
    print(format_report(report))
    return 0


def run_port(args: argparse.Namespace) -> int:
    from ofa_core.convert.pipeline import convert_to_directory
    from ofa_core.convert.port import port_tokenizer, read_port, resolve_source
    from ofa_core.convert.report import format_report
    from ofa_core.convert.writer import build_tokenizer, check_output_dir

    check_output_dir(args.out)
    directory = resolve_source(args.source)
    converted = read_port(directory)
    tokenizer = build_tokenizer(converted.config.language, converted.config, args.vocab, args.bpe_dir)
    source = str(args.vocab or args.bpe_dir) if tokenizer else None
    if tokenizer is None:
        tokenizer = port_tokenizer(directory, converted.config)
        source = f"the port's own files in {directory}" if tokenizer else None
    report = convert_to_directory(
        converted, args.source, args.out, tokenizer=tokenizer, tokenizer_source=source, verify=args.verify
    )
    print(format_report(report))
    return 0


def run_to_fairseq(args: argparse.Namespace) -> int:
    from ofa_core.convert.to_fairseq import export_fairseq

    summary = export_fairseq(args.directory, args.out, task=args.task)
    print(
        f"wrote {args.out}: {summary['keys']} state-dict entries, {summary['parameters']:,} parameters; fairseq task "
        f"'{summary['task']}', cfg from {summary['cfg_source']}"
    )
    return 0
