"""pykex.elf: reading and writing ELF files.

:mod:`.symbols` finds functions in executables and shared libraries, for
uprobes.
"""
