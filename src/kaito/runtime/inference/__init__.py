"""The model server: KAITO's `/chat` API and the OpenAI API over a batching engine."""
