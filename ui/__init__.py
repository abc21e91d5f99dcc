"""The Qt window: adapts emulator events and calls; holds no protocol or tree logic of its own."""
