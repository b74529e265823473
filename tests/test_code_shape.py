"""The code stays readable in one sitting: no function in the package reaches 80 lines."""
import ast
from pathlib import Path

import headstart

ROOT = Path(headstart.__file__).parent
LIMIT = 80


def test_no_function_reaches_80_lines():
    long = []
    for f in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n >= LIMIT:
                    long.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions of 80+ lines: " + "; ".join(long)
