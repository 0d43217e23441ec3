"""Norrbrook Instruments: the fictional company whose handbook ``make run`` ingests.

``content/`` holds the handbook as small Markdown sources with front matter (output file name,
title, e-mail headers); ``python -m samples.generate OUT_DIR`` renders them, byte-for-byte
reproducibly, into PDF, DOCX, PPTX, XLSX, HTML, Markdown and EML under OUT_DIR.
"""
