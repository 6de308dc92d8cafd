"""pykex.elf: reading and writing ELF files.

:mod:`.symbols` finds functions in executables and shared libraries, for
uprobes.

BPF objects (the libbpf-style ``.o`` files clang writes and pykex emits):

* :mod:`.spec` -- :class:`ObjectSpec`, :class:`ProgramSpec`, :class:`MapSpec`,
  :class:`Relocation`: an object as plain values, no syscalls;
  :func:`section_type` maps a section name to its program type,
  :func:`link_program` appends the subprograms a program calls, and
  :func:`program_from_instructions` builds a function from :mod:`pykex.bpf`
  instructions.
* :mod:`.writer` -- :func:`write_object`: spec -> ELF bytes that libbpf
  (``bpftool prog loadall``) and the LLVM tools accept.
* :mod:`.reader` -- :func:`read_object`: ELF bytes (ours or clang's) -> spec;
  malformed input raises :class:`ELFFormatError`.
* :mod:`.load` -- :func:`load_object`: spec -> :class:`LoadedObject` with
  live programs and maps, all or nothing.
"""

from pykex.elf.errors import ELFError, ELFFormatError, ObjectLoadError, ObjectSpecError
from pykex.elf.load import LoadedObject, load_object
from pykex.elf.reader import read_object
from pykex.elf.spec import (
    SECTION_TYPES,
    LinkedProgram,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    Relocation,
    RelocationKind,
    SectionType,
    Variable,
    is_data_section,
    link_program,
    program_from_instructions,
    section_type,
)
from pykex.elf.writer import write_object

__all__ = [
    "SECTION_TYPES",
    "ELFError",
    "ELFFormatError",
    "LinkedProgram",
    "LoadedObject",
    "MapSpec",
    "ObjectLoadError",
    "ObjectSpec",
    "ObjectSpecError",
    "ProgramSpec",
    "Relocation",
    "RelocationKind",
    "SectionType",
    "Variable",
    "is_data_section",
    "link_program",
    "load_object",
    "program_from_instructions",
    "read_object",
    "section_type",
    "write_object",
]
