"""The upstream layer: one HTTP SSE request over ``requests`` and what it needs (MIME types,
header values, causes, the per-stream cookie connector), and protocols in front of the SSE
decoder (MCP sessions, ``upstream.mcp``).
"""
