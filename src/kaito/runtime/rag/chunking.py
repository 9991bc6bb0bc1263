"""Splitting documents into chunks: by sentences for prose, by syntax for code.

`semantic-text-splitter` (Rust) does the splitting: prose at the largest unit that fits (paragraph,
then Unicode sentence, then word), code at tree-sitter syntax boundaries when a document's metadata
says `split_type: code` and names its `language` (KAITO's convention), Markdown at headings and
blocks. Chunk sizes are counted in the local embedder's own tokens, so a chunk is never silently
cut by the embedder (KAITO's 1024-token chunks are truncated to bge-small's 512); with a remote
embedder they are counted in `cl100k_base` tokens (bundled with the splitter, no download).

Grammars come from the `tree-sitter-<language>` wheels of the `rag` profile; a language whose
wheel is missing is a 400 naming the ones that are installed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from kaito.runtime.rag.errors import RagError

# language name (as KAITO's users write it) -> (module, function returning the grammar)
GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "java": ("tree_sitter_java", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "c_sharp": ("tree_sitter_c_sharp", "language"),
    "bash": ("tree_sitter_bash", "language"),
}
ALIASES = {"py": "python", "js": "javascript", "ts": "typescript", "golang": "go", "rs": "rust",
           "c++": "cpp", "csharp": "c_sharp", "c#": "c_sharp", "cs": "c_sharp", "sh": "bash", "shell": "bash",
           "md": "markdown"}
DEFAULT_CHUNK_TOKENS = 1024
MAX_OVERLAP = 200


@dataclass(frozen=True, kw_only=True)
class ChunkSizing:
    size: int
    overlap: int


def build_sizing(chunk_size: int | None, chunk_overlap: int | None, embedder_limit: int | None) -> ChunkSizing:
    """Chunk size: the setting, else 1024; never above what the embedder reads. Overlap: a fifth, ≤ 200."""
    size = chunk_size or DEFAULT_CHUNK_TOKENS
    if embedder_limit:
        size = min(size, embedder_limit)
    overlap = chunk_overlap if chunk_overlap is not None else min(MAX_OVERLAP, size // 5)
    return ChunkSizing(size=size, overlap=min(overlap, size - 1))


def canonical_language(language: str) -> str:
    lowered = language.strip().lower()
    return ALIASES.get(lowered, lowered)


class Chunker:
    """Splits texts; one splitter per kind is built on first use and reused (they are thread-safe)."""

    def __init__(self, sizing: ChunkSizing, tokenizer: Any | None = None) -> None:
        self.sizing = sizing
        self._tokenizer = tokenizer  # a `tokenizers.Tokenizer` (local embedder) or None (cl100k)
        self._splitters: dict[str, Any] = {}

    def _build(self, kind: str, grammar: Any = None) -> Any:
        import semantic_text_splitter as sts

        cls = {"text": sts.TextSplitter, "markdown": sts.MarkdownSplitter}.get(kind, sts.CodeSplitter)
        size, overlap = self.sizing.size, self.sizing.overlap
        lead = (grammar,) if grammar is not None else ()
        if self._tokenizer is not None:
            return cls.from_huggingface_tokenizer(*lead, self._tokenizer, size, overlap)
        return cls.from_tiktoken_model(*lead, "gpt-3.5-turbo", size, overlap)

    def _splitter(self, metadata: dict[str, Any]) -> Any:
        if str(metadata.get("split_type", "")).lower() != "code":
            key = "text"
        else:
            language = metadata.get("language")
            if not isinstance(language, str) or not language.strip():
                raise RagError("metadata.language: required when metadata.split_type is 'code'")
            key = canonical_language(language)
        if key in self._splitters:
            return self._splitters[key]
        if key in ("text", "markdown"):
            splitter = self._build(key)
        else:
            splitter = self._build("code", self._grammar(key))
        self._splitters[key] = splitter
        return splitter

    @staticmethod
    def _grammar(language: str) -> Any:
        if language not in GRAMMARS:
            raise RagError(f"metadata.language: no code splitter for {language!r} "
                           f"(supported: {', '.join(sorted([*GRAMMARS, 'markdown']))})")
        module_name, func = GRAMMARS[language]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise RagError(f"metadata.language: the grammar for {language!r} is not installed "
                           f"(pip install {module_name.replace('_', '-')})") from None
        return getattr(module, func)()

    def check(self, metadata: dict[str, Any]) -> None:
        """Raise the 400 a document's metadata would cause, before any work is done."""
        self._splitter(metadata)

    def split(self, text: str, metadata: dict[str, Any]) -> list[str]:
        chunks = [c for c in self._splitter(metadata).chunks(text) if c.strip()]
        return chunks or ([text] if text.strip() else [])
