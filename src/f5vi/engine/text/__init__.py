"""The text front end: what the model is given to read.

``normalizer`` (NFC, rewrite ``rules``, the vinorm binary through ``vinorm_runner``, vocabulary checks),
``chunking`` (sentence/clause chunks and their duration budget), ``voice_tags`` (``[voice_id]`` segments) and
``vocab`` (upstream's tokenizer). Lexicons and SSML belong here too: everything that decides which characters
the model reads, before any tensor exists (only ``vocab.encode`` builds one).
"""
