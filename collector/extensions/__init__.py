"""Extensions: components that are not part of a pipeline (authentication)."""
