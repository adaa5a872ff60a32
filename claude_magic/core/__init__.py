"""Asking, without display: the turn engine, the session, the conversation and its store, the
context budget, prompt caching, the answer cache, prices and tools."""
