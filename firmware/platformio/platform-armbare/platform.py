"""PlatformIO dev-platform ``armbare``: bare-metal Cortex-M with the system toolchain (tinyml-mcu)."""
from platformio.public import PlatformBase


class ArmbarePlatform(PlatformBase):
    def is_embedded(self):
        return True
