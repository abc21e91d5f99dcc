"""The attack set: each test attacks the emulator or its reference server the way a hostile peer
would, over real loopback HTTP (and TLS where it matters), and checks that the attack is held.

Run the whole set alone with ``scripts/attack`` (docs/security.md lists what each test covers).
"""
