"""Sans-IO protocol engines: bytes in, actions and bytes out; no sockets, no clocks, no asyncio.

Both engines (``syncml`` for DM 1.2/1.3, ``dm2`` for DM 2.0) speak through the actions of
:mod:`emulator.protocol.actions`, so one session runner drives either of them, under asyncio, under
gevent (Locust) or in a test that plays the server by hand.
"""
