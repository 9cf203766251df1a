"""Upstream protocols in front of the SSE decoder: MCP sessions (``upstream.mcp``).

The plain SSE ``Connection`` still lives in ``streamvisor.connection`` until the layout
change (issue 9) moves it here.
"""
