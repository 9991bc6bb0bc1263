"""Turns dataset files, folders and URLs into tokenized training rows, naming any bad row.

KAITO's trainer takes the first file whose name merely *contains* "csv" or "json" and hands rows
to TRL as they are; a malformed row surfaces as a stack trace deep in training. Here every file
(jsonl, json, csv, parquet, arrow) is read row by row and each row must be one of the formats
KAITO documents — conversational `messages`, instruction `prompt`/`completion`, or plain `text` —
so a bad row stops the run before the model is even loaded, with its file and row number.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaito.runtime.tuning import download as downloads
from kaito.runtime.tuning.config import DatasetSection
from kaito.runtime.tuning.errors import DataError

EXTENSIONS = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow"}
DEFAULT_DATA_FOLDER = "/mnt/data"  # KAITO's DATASET_FOLDER_PATH default


@dataclass(frozen=True)
class Example:
    """One validated row: the full text to learn, and the prompt prefix that carries no loss."""

    text: str
    prompt: str = ""


@dataclass(frozen=True)
class Columns:
    messages: str = "messages"
    prompt: str = "prompt"
    completion: str = "completion"
    text: str = "text"

    @classmethod
    def from_config(cls, config: DatasetSection) -> Columns:
        return cls(messages=config.messages_column or "messages", prompt=config.context_column or "prompt",
                   text=config.response_column or "text")


def resolve_files(sources: list[str], config: DatasetSection, download_dir: Path) -> list[Path]:
    """Every data file named by `--data` entries (files, folders, URLs) or by the config."""
    if not sources:
        if config.dataset_path:
            # KAITO resolves a relative dataset_path under /mnt, where its volumes are mounted.
            path = Path(config.dataset_path)
            sources = [str(path if path.is_absolute() else Path("/mnt") / path)]
        else:
            sources = [os.environ.get("DATASET_FOLDER_PATH", DEFAULT_DATA_FOLDER)]
    files: list[Path] = []
    for index, source in enumerate(sources):
        if downloads.is_url(source):
            name = downloads.compute_download_name(index, source)
            files.append(downloads.download(source, download_dir, config.max_download_bytes, name=name))
            continue
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _format_of(p, config) is not None)
            if not found:
                raise DataError(f"no data files ({', '.join(EXTENSIONS)}) in folder {path}")
            files.extend(found)
        elif path.is_file():
            if _format_of(path, config) is None:
                raise DataError(f"{path}: unsupported file type; use one of {', '.join(EXTENSIONS)}")
            files.append(path)
        else:
            raise DataError(f"data source {source} does not exist")
    return files


def _format_of(path: Path, config: DatasetSection) -> str | None:
    if config.dataset_extension:
        return EXTENSIONS.get("." + config.dataset_extension.lstrip(".").lower())
    return EXTENSIONS.get(path.suffix.lower())


def read_rows(path: Path, fmt: str, columns: Columns | None = None) -> Iterator[tuple[int, Any]]:
    """(row number from 1, row) for every row of a file; unreadable rows raise DataError."""
    if fmt in ("jsonl", "json"):
        yield from _read_json(path, columns or Columns())
    elif fmt == "csv":
        with path.open(newline="", encoding="utf-8") as handle:
            yield from enumerate(csv.DictReader(handle), start=1)
    else:
        yield from enumerate(_read_table(path, fmt).to_pylist(), start=1)


_JSON_SHAPES = "expected a JSON array of rows, JSON lines (one object per line), or an object holding the rows " \
               "under one list-valued key such as \"data\""


def _read_json(path: Path, columns: Columns) -> Iterator[tuple[int, Any]]:
    """Either extension holds either shape: one JSON document (an array of rows, an object with the
    rows under one key as in `{"data": [...]}`, or a single row) or JSON lines."""
    text = path.read_text(encoding="utf-8")
    head = text.lstrip()[:1]
    if head in ("[", "{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            # JSON lines when the first line is a whole object; else a document that is broken.
            if head == "[" or not _is_json(text.lstrip().splitlines()[0]):
                raise DataError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}; {_JSON_SHAPES}") from None
        else:
            yield from enumerate(_rows_of_document(path, document, columns), start=1)
            return
    number = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        number += 1
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: row {number} is not valid JSON: {exc.msg}; {_JSON_SHAPES}") from None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _rows_of_document(path: Path, document: Any, columns: Columns) -> list[Any]:
    if isinstance(document, list):
        return document
    row_keys = {columns.messages, columns.prompt, columns.completion, columns.text}
    lists = [key for key, value in document.items() if isinstance(value, list)]
    if row_keys & set(document) or not lists:
        return [document]  # one row (a one-line JSON lines file, or one pretty-printed row)
    if len(lists) == 1:
        return document[lists[0]]
    raise DataError(f"{path}: a JSON object with several lists ({', '.join(map(repr, lists))}) and no row "
                    f"field; {_JSON_SHAPES}")


def _read_table(path: Path, fmt: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet":
            return pq.read_table(path)
        with pa.memory_map(str(path)) as source:
            try:
                return pa.ipc.open_stream(source).read_all()  # what `datasets` writes
            except pa.ArrowInvalid:
                source.seek(0)
                return pa.ipc.open_file(source).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot read as {fmt}: {exc}") from None


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def build_example(row: Any, columns: Columns, tokenizer) -> Example:
    """One row in one of KAITO's formats, rendered with the model's chat template.

    Raises ValueError saying what is wrong with the row; the caller adds file and row number.
    """
    if not isinstance(row, dict):
        raise ValueError(f"expected an object, got {type(row).__name__}")
    if columns.messages in row and row[columns.messages] is not None:
        messages = row[columns.messages]
        if isinstance(messages, str):  # csv cells and some exports hold the list as JSON text
            try:
                messages = json.loads(messages)
            except json.JSONDecodeError:
                raise ValueError(f"'{columns.messages}' is text that is not a JSON list") from None
        if not isinstance(messages, list) or not messages:
            raise ValueError(f"'{columns.messages}' must be a non-empty list of {{role, content}}")
        for i, message in enumerate(messages):
            if not (isinstance(message, dict) and _nonempty_str(message.get("role"))
                    and isinstance(message.get("content"), str)):
                raise ValueError(f"'{columns.messages}'[{i}] must have a string 'role' and 'content'")
        return Example(text=_render(tokenizer, [{"role": m["role"], "content": m["content"]} for m in messages]))
    if columns.prompt in row or columns.completion in row:
        prompt, completion = row.get(columns.prompt), row.get(columns.completion)
        if not (_nonempty_str(prompt) and _nonempty_str(completion)):
            raise ValueError(f"'{columns.prompt}' and '{columns.completion}' must both be non-empty strings")
        user = {"role": "user", "content": prompt}
        full = _render(tokenizer, [user, {"role": "assistant", "content": completion}])
        head = _render(tokenizer, [user], add_generation_prompt=True)
        return Example(text=full, prompt=head if full.startswith(head) else "")
    if columns.text in row:
        if not _nonempty_str(row[columns.text]):
            raise ValueError(f"'{columns.text}' must be a non-empty string")
        return Example(text=row[columns.text] + (tokenizer.eos_token or ""))
    keys = ", ".join(sorted(map(str, row))) or "none"
    raise ValueError(f"no '{columns.messages}', '{columns.prompt}'/'{columns.completion}' or "
                     f"'{columns.text}' field (found: {keys})")


def _render(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    # A base model without a chat template: plain role-tagged lines, ending with EOS per message.
    eos = tokenizer.eos_token or ""
    text = "".join(f"{m['role']}: {m['content']}{eos}\n" for m in messages)
    return text + ("assistant: " if add_generation_prompt else "")


@dataclass(frozen=True)
class LoadedData:
    examples: list[Example]
    digest: str  # sha256 over file names and bytes: same data ⇒ same digest
    files: list[Path]


def load_examples(files: list[Path], config: DatasetSection, tokenizer) -> LoadedData:
    """Read and validate every row of every file; the first bad row stops everything."""
    columns = Columns.from_config(config)
    digest = hashlib.sha256()
    examples: list[Example] = []
    for path in files:
        fmt = _format_of(path, config) or "jsonl"
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
        try:
            for number, row in read_rows(path, fmt, columns):
                try:
                    examples.append(build_example(row, columns, tokenizer))
                except ValueError as exc:
                    raise DataError(f"{path}: row {number}: {exc}") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{path}: cannot read as {fmt}: {exc}") from None
    if not examples:
        raise DataError(f"no rows in {', '.join(map(str, files))}")
    return LoadedData(examples, digest.hexdigest(), files)


def build_datasets(examples: list[Example], config: DatasetSection, tokenizer):
    """Tokenized `datasets.Dataset`s (train, eval or None); prompt tokens carry no loss (-100)."""
    import datasets

    def tokenize(batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
        full = tokenizer(batch["text"], add_special_tokens=False, truncation=True,
                         max_length=config.max_seq_length)["input_ids"]
        heads = tokenizer(batch["prompt"], add_special_tokens=False)["input_ids"]
        labels = [[-100] * min(len(h), len(ids)) + ids[len(h):] for ids, h in zip(full, heads, strict=True)]
        return {"input_ids": full, "attention_mask": [[1] * len(ids) for ids in full], "labels": labels}

    raw = datasets.Dataset.from_dict({"text": [e.text for e in examples], "prompt": [e.prompt for e in examples]})
    tokenized = raw.map(tokenize, batched=True, remove_columns=["text", "prompt"], desc="tokenizing")
    # A prompt longer than max_seq_length leaves nothing to learn, and a batch of only such rows
    # would make the loss NaN.
    tokenized = tokenized.filter(lambda row: any(label != -100 for label in row["labels"]), desc="dropping rows with no answer left")
    if len(tokenized) == 0:
        raise DataError(f"every row's prompt fills DatasetConfig.max_seq_length ({config.max_seq_length})")
    if config.shuffle_dataset:
        # Seeded, unlike KAITO: a resumed run must see the rows in the same order.
        tokenized = tokenized.shuffle(seed=config.shuffle_seed)
    if config.train_test_split >= 1 or len(tokenized) < 2:
        return tokenized, None
    split = tokenized.train_test_split(train_size=config.train_test_split, seed=config.shuffle_seed)
    return split["train"], split["test"]
