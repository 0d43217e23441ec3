"""The answerer seam: extractive (quoted sentences, the embedded default) or generative (an LLM,
grounding-checked). Both implement :class:`assistant.answerers.base.Answerer`."""
