"""The language-verifier gap corpus: safe C programs this kernel's verifier rejects.

Each case under ``gap/cases/<NN>_<name>/`` holds ``prog.c`` (the natural,
safe program), usually ``workaround.c`` (what authors write to get it past
the verifier) and ``case.toml`` (what the program does, with packets and
expected results, the expected verifier error and the workaround's cost).
:mod:`gap.corpus` builds and loads them; :mod:`gap.report` prints the table.
"""
