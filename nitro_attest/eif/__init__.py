"""Measure enclave image files (EIF): PCR0, PCR1, PCR2 and PCR8 from the file, without nitro-cli.

:func:`describe` reads an ``.eif`` once, streaming, and returns an
:class:`EifDescription`: the PCRs an enclave booted from it reports (typed
like an attestation document's, :class:`~nitro_attest.PCRValue`), its
sections, the CRC check, the metadata nitro-cli recorded and, for a signed
image, the signing certificate and the check of its signature. A file that
is not an image raises :class:`EifError` (a ``ValueError`` with a stable
``code``). The format is that of github.com/aws/aws-nitro-enclaves-image-format.

>>> description = describe("enclave.eif")  # doctest: +SKIP
>>> description.pcrs[0].hex()  # doctest: +SKIP
"""

from ._model import (
    HEADER_SIZE,
    MAX_CMDLINE_SIZE,
    MAX_METADATA_DEPTH,
    MAX_METADATA_SIZE,
    MAX_SECTIONS,
    MAX_SIGNATURE_SIZE,
    SECTION_HEADER_SIZE,
    EifArchitecture,
    EifDescription,
    EifError,
    EifMetadata,
    EifSection,
    EifSectionType,
    EifSignatureCheck,
    EifSignatureStatus,
)
from ._reader import CHUNK_SIZE, Progress, describe

__all__ = [
    "CHUNK_SIZE",
    "HEADER_SIZE",
    "MAX_CMDLINE_SIZE",
    "MAX_METADATA_DEPTH",
    "MAX_METADATA_SIZE",
    "MAX_SECTIONS",
    "MAX_SIGNATURE_SIZE",
    "SECTION_HEADER_SIZE",
    "EifArchitecture",
    "EifDescription",
    "EifError",
    "EifMetadata",
    "EifSection",
    "EifSectionType",
    "EifSignatureCheck",
    "EifSignatureStatus",
    "Progress",
    "describe",
]
