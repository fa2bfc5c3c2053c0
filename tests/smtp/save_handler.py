"""An aiosmtpd handler for custos's digest tests (tests/it/digest.rs).

Run as: python -m aiosmtpd -n -l 127.0.0.1:PORT -c save_handler.SaveRaw FOLDER
with this folder on PYTHONPATH.

Each message is saved as the client sent it (after SMTP's dot-unstuffing),
byte for byte, to FOLDER/NNNN.eml, with its envelope recipients in
FOLDER/NNNN.rcpt; both are written whole under a temporary name and then
renamed, the .eml last, so a reader that sees an .eml sees both whole.
While a file named `refuse` exists in FOLDER, every message is refused
with 451 (a relay that cannot take mail for now) and a line is added to
FOLDER/refused.
"""

import os


class SaveRaw:
    def __init__(self, folder):
        self.folder = folder
        self.count = len([n for n in os.listdir(folder) if n.endswith(".eml")])

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("SaveRaw takes one argument: the folder to save messages in")
        return cls(args[0])

    def _write(self, name, data):
        tmp = os.path.join(self.folder, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.folder, name))

    async def handle_DATA(self, server, session, envelope):
        if os.path.exists(os.path.join(self.folder, "refuse")):
            with open(os.path.join(self.folder, "refused"), "a") as f:
                f.write("refused\n")
            return "451 4.3.0 Not now (the test refuses mail)"
        self.count += 1
        name = "%04d" % self.count
        content = envelope.original_content or envelope.content
        self._write(name + ".rcpt", "\n".join(envelope.rcpt_tos).encode())
        self._write(name + ".eml", content)
        return "250 2.0.0 Saved"
