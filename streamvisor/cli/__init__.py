"""The command line: ``streamvisor tail|run|check|demo|relay|top|mcp|cluster``."""

from streamvisor.cli.main import build_parser, main, run_main

__all__ = ["build_parser", "main", "run_main"]
