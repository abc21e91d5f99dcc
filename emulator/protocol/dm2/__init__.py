"""DM 2.0 (JSON over HTTP): wire formats and addressing, all sans-IO.

- ``notification``: Package#0 binary notification, digest, replay guard
- ``messages``: Packages #1/#2/#3 JSON and typed commands
- ``clienturi``: ClientURI parsing, formatting and resolution
- ``moser``: MO serialization and typed leaf values
- ``media``: media types, header names, Accept negotiation
- ``jsonsafe``: the hardened JSON reader all of them use
"""
