#!/usr/bin/python3
"""Prints the one fenced code block of LANGUAGE in a Markdown file: extract.py FILE LANGUAGE."""
import re
import sys

path, language = sys.argv[1], sys.argv[2]
blocks = re.findall(r"^```" + re.escape(language) + r"\n(.*?)^```", open(path, encoding="utf-8").read(), re.S | re.M)
if len(blocks) != 1:
    sys.exit(f"extract.py: {path} has {len(blocks)} {language} blocks, not one")
sys.stdout.write(blocks[0])
