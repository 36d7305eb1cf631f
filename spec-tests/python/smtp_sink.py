"""A real SMTP server for the email tests: aiosmtpd on 127.0.0.1:PORT, writing each message it accepts to
FOLDER/<n>.eml (the raw message, envelope recipients in an X-Envelope-To header first)."""
import asyncio
import itertools
import os
import sys

from aiosmtpd.controller import Controller


class FolderHandler:
    def __init__(self, folder):
        self.folder = folder
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        temp = os.path.join(self.folder, f"{n}.tmp")
        with open(temp, "wb") as f:
            f.write(b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content)
        # Renamed once complete, so a reader never sees half a message.
        os.rename(temp, os.path.join(self.folder, f"{n}.eml"))
        return "250 Message accepted for delivery"


async def main(port, folder):
    controller = Controller(FolderHandler(folder), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
