"""Instrumentors for LLM SDKs, one subpackage per SDK (openai, anthropic, google_genai)."""
