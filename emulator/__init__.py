"""dm-emulator core: virtual OMA DM devices, their trees, protocol engines and the reference server.

Nothing under this package imports Qt; the window in ``ui/`` only listens to it.
"""

__version__ = "0.1.0"
