"""Dataset files → validated examples: every format, every file type, bad rows named by file and row."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kaito.runtime.tuning import data as datas
from kaito.runtime.tuning.config import DatasetSection
from kaito.runtime.tuning.errors import DataError


class PlainTokenizer:
    """A tokenizer without a chat template: the fallback rendering path."""

    chat_template = None
    eos_token = "</s>"


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model.path)


ROWS = [
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
    {"prompt": "2+2?", "completion": "four"},
    {"text": "just text"},
]


def test_formats_use_the_chat_template(tokenizer):
    cols = datas.Columns()
    chat = datas.build_example(ROWS[0], cols, tokenizer)
    assert chat.text == "<|user|>hi<|end|><|assistant|>hello<|end|>" and chat.prompt == ""
    inst = datas.build_example(ROWS[1], cols, tokenizer)
    assert inst.text == "<|user|>2+2?<|end|><|assistant|>four<|end|>"
    assert inst.prompt == "<|user|>2+2?<|end|><|assistant|>"
    assert datas.build_example(ROWS[2], cols, tokenizer).text == "just text<|end|>"


def test_without_a_chat_template_roles_are_plain_lines():
    example = datas.build_example(ROWS[1], datas.Columns(), PlainTokenizer())
    assert example.text == "user: 2+2?</s>\nassistant: four</s>\n"
    assert example.prompt == "user: 2+2?</s>\nassistant: "


def test_configured_columns_are_used():
    cols = datas.Columns.from_config(DatasetSection(context_column="q", response_column="body", messages_column="c"))
    assert datas.build_example({"q": "a", "completion": "b"}, cols, PlainTokenizer()).prompt
    assert datas.build_example({"body": "t"}, cols, PlainTokenizer()).text == "t</s>"


@pytest.mark.parametrize("row,why", [
    ({"prompt": "only a prompt"}, "'prompt' and 'completion' must both be non-empty"),
    ({"prompt": "p", "completion": ""}, "must both be non-empty"),
    ({"messages": []}, "non-empty list"),
    ({"messages": [{"role": "user"}]}, r"'messages'\[0\] must have a string 'role' and 'content'"),
    ({"messages": "not json"}, "not a JSON list"),
    ({"text": 3}, "'text' must be a non-empty string"),
    ({"question": "q", "answer": "a"}, "found: answer, question"),
    (["a", "list"], "expected an object"),
])
def test_malformed_rows_are_explained(row, why):
    with pytest.raises(ValueError, match=why):
        datas.build_example(row, datas.Columns(), PlainTokenizer())


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_row_names_file_and_row(tmp_path):
    path = _jsonl(tmp_path / "train.jsonl", [ROWS[1], ROWS[2], {"prompt": "x"}, ROWS[1]])
    with pytest.raises(DataError, match=r"train.jsonl: row 3: 'prompt' and 'completion'"):
        datas.load_examples([path], DatasetSection(), PlainTokenizer())


def test_invalid_json_line_names_the_row(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[2]) + "\n\n{not json\n")
    with pytest.raises(DataError, match="train.jsonl: row 2 is not valid JSON"):
        datas.load_examples([path], DatasetSection(), PlainTokenizer())


@pytest.mark.parametrize("name", ["train.json", "train.jsonl"])
def test_json_documents_of_rows_are_read(tmp_path, name):
    path = tmp_path / name
    for document in (ROWS, {"data": ROWS}, {"version": 2, "train": ROWS}):
        path.write_text(json.dumps(document, indent=2))
        loaded = datas.load_examples([path], DatasetSection(), PlainTokenizer())
        assert [e.text for e in loaded.examples] == [datas.build_example(r, datas.Columns(), PlainTokenizer()).text
                                                     for r in ROWS], document
    path.write_text(json.dumps(ROWS[0], indent=2))  # one pretty-printed conversation is one row
    assert len(datas.load_examples([path], DatasetSection(), PlainTokenizer()).examples) == 1


@pytest.mark.parametrize("text, why", [
    (json.dumps({"train": ROWS, "test": ROWS}, indent=2), "several lists ('train', 'test') and no row field"),
    ('{\n  "data": [\n    {"text": "a"},\n  ]\n}\n', "not valid JSON (line 4)"),
    ('[{"text": "a"},\n', "not valid JSON (line 2)"),
])
def test_unusable_json_documents_say_what_is_expected(tmp_path, text, why):
    path = tmp_path / "train.json"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        datas.load_examples([path], DatasetSection(), PlainTokenizer())
    message = str(err.value)
    assert message.startswith(f"{path}: ") and why in message and "row 1" not in message
    assert "expected a JSON array of rows, JSON lines (one object per line)" in message


def test_every_file_type_reads_the_same_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(3)]
    files = [_jsonl(tmp_path / "a.jsonl", rows)]
    (tmp_path / "b.json").write_text(json.dumps(rows))
    files.append(tmp_path / "b.json")
    with (tmp_path / "c.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["prompt", "completion"])
        writer.writeheader()
        writer.writerows(rows)
    files.append(tmp_path / "c.csv")
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, tmp_path / "d.parquet")
    files.append(tmp_path / "d.parquet")
    with pa.OSFile(str(tmp_path / "e.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    files.append(tmp_path / "e.arrow")
    loaded = datas.load_examples(files, DatasetSection(), PlainTokenizer())
    texts = [e.text for e in loaded.examples]
    assert len(texts) == 15 and all(texts[i::3] == [texts[i]] * 5 for i in range(3))


def test_messages_in_a_csv_cell_are_json(tmp_path):
    path = tmp_path / "chat.csv"
    path.write_text('messages\n"[{""role"": ""user"", ""content"": ""hi""}]"\n')
    assert datas.load_examples([path], DatasetSection(), PlainTokenizer()).examples[0].text == "user: hi</s>\n"


def test_folder_sources_and_unknown_types(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    _jsonl(tmp_path / "d" / "b.jsonl", [ROWS[2]])
    _jsonl(tmp_path / "d" / "sub" / "a.jsonl", [ROWS[2]])
    (tmp_path / "d" / "notes.txt").write_text("ignored")
    files = datas.resolve_files([str(tmp_path / "d")], DatasetSection(), tmp_path / "dl")
    assert [f.name for f in files] == ["b.jsonl", "a.jsonl"]
    with pytest.raises(DataError, match="notes.txt: unsupported file type"):
        datas.resolve_files([str(tmp_path / "d" / "notes.txt")], DatasetSection(), tmp_path / "dl")
    with pytest.raises(DataError, match="does not exist"):
        datas.resolve_files([str(tmp_path / "missing.jsonl")], DatasetSection(), tmp_path / "dl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no data files"):
        datas.resolve_files([str(tmp_path / "empty")], DatasetSection(), tmp_path / "dl")


def test_dataset_extension_overrides_the_suffix(tmp_path):
    path = _jsonl(tmp_path / "data.txt", [ROWS[2]])
    files = datas.resolve_files([str(path)], DatasetSection(dataset_extension="jsonl"), tmp_path)
    assert files == [path]


def test_digest_follows_content(tmp_path):
    a = _jsonl(tmp_path / "a.jsonl", [ROWS[2]])
    first = datas.load_examples([a], DatasetSection(), PlainTokenizer()).digest
    assert datas.load_examples([a], DatasetSection(), PlainTokenizer()).digest == first
    _jsonl(a, [ROWS[2], ROWS[2]])
    assert datas.load_examples([a], DatasetSection(), PlainTokenizer()).digest != first


def test_prompt_tokens_carry_no_loss_and_split_is_seeded(tokenizer):
    examples = [datas.build_example({"prompt": f"q{i}", "completion": "the fox"}, datas.Columns(), tokenizer)
                for i in range(10)]
    cfg = DatasetSection(train_test_split=0.8)
    train, test = datas.build_datasets(examples, cfg, tokenizer)
    assert (len(train), len(test)) == (8, 2)
    row = train[0]
    n_prompt = sum(1 for label in row["labels"] if label == -100)
    head = tokenizer(examples[0].prompt, add_special_tokens=False)["input_ids"]
    assert n_prompt == len(head) and row["labels"][n_prompt:] == row["input_ids"][n_prompt:]
    again, _ = datas.build_datasets(examples, cfg, tokenizer)
    assert again["input_ids"] == train["input_ids"]  # same order on a resumed run


def test_too_long_prompts_are_an_error(tokenizer):
    examples = [datas.Example(text="x " * 50 + "y", prompt="x " * 50)]
    with pytest.raises(DataError, match="max_seq_length"):
        datas.build_datasets(examples, DatasetSection(max_seq_length=10), tokenizer)
